package localfleet

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// authenticate forwards a SaslAuthenticate to kfake. kfake drops the
// connection of a client whose SCRAM proof (or user) is wrong; Kafka
// answers SASL_AUTHENTICATION_FAILED first, and clients fail at once on
// that answer, where they retry a dropped connection until their timeout
// (franz-go: 30 s of EOFs). So the fleet answers as Kafka does. The
// upstream connection is gone: the client's next request on this
// connection ends it, as Kafka closes a connection that failed to
// authenticate.
func (s *session) authenticate(req *request) ([]byte, error) {
	s.observeSASL(req)
	resp, err := s.roundTrip(req, true)
	if err == nil {
		return s.p.c.rewriteResponse(req, resp)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, err // the broker stopped: a dropped connection, as Kafka's
	}
	mechanism := s.mechanism
	if mechanism == "" {
		mechanism = "SCRAM"
	}
	// Kafka's message; it names no credential.
	msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism
	s.p.log.Debug().Str("user", s.user).Msg("sasl authentication failed")
	out := kmsg.NewPtrSASLAuthenticateResponse()
	out.ErrorCode = kerr.SaslAuthenticationFailed.Code
	out.ErrorMessage = &msg
	return req.encodeResponse(out), nil
}
