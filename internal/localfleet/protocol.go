package localfleet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka wire framing: every request and response is an int32 size followed
// by that many bytes.

// maxFrameSize bounds a frame; Kafka's socket.request.max.bytes default.
const maxFrameSize = 100 << 20

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > maxFrameSize {
		return nil, fmt.Errorf("invalid frame size %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func writeFrame(w io.Writer, frame []byte) error {
	buf := make([]byte, 4, 4+len(frame))
	binary.BigEndian.PutUint32(buf, uint32(len(frame)))
	_, err := w.Write(append(buf, frame...))
	return err
}

// request is a parsed request frame. The frame itself is forwarded
// verbatim; only the requests the proxy must understand are decoded.
type request struct {
	key      int16
	version  int16
	corr     int32
	flexible bool
	frame    []byte       // the whole frame, header included
	body     []byte       // the frame after the header
	kreq     kmsg.Request // nil for keys this kmsg does not know
}

// parseRequest parses the request header (v1, or v2 with tagged fields when
// the request version is flexible).
func parseRequest(frame []byte) (*request, error) {
	if len(frame) < 10 {
		return nil, fmt.Errorf("short request header (%d bytes)", len(frame))
	}
	r := &request{
		key:     int16(binary.BigEndian.Uint16(frame[0:])),
		version: int16(binary.BigEndian.Uint16(frame[2:])),
		corr:    int32(binary.BigEndian.Uint32(frame[4:])),
		frame:   frame,
	}
	b := kbin.Reader{Src: frame[8:]}
	b.NullableString() // client id
	if r.kreq = kmsg.RequestForKey(r.key); r.kreq != nil {
		r.kreq.SetVersion(r.version)
		r.flexible = r.kreq.IsFlexible()
	}
	if r.flexible {
		kmsg.SkipTags(&b)
	}
	if !b.Ok() {
		return nil, fmt.Errorf("malformed header of request key %d v%d", r.key, r.version)
	}
	r.body = b.Src
	return r, nil
}

// decode parses the request body into r.kreq.
func (r *request) decode() (kmsg.Request, error) {
	if r.kreq == nil {
		return nil, fmt.Errorf("unknown request key %d", r.key)
	}
	if err := r.kreq.ReadFrom(r.body); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(r.key), r.version, err)
	}
	return r.kreq, nil
}

// reencode replaces the body of the frame with kreq's encoding, keeping
// the header (and so the correlation id) as the client sent it.
func (r *request) reencode(kreq kmsg.Request) {
	header := r.frame[:len(r.frame)-len(r.body)]
	frame := kreq.AppendTo(slices.Clone(header))
	r.frame, r.body = frame, frame[len(header):]
}

// responseHeaderFlexible reports whether the response header carries tagged
// fields. ApiVersions responses never do, so that a client can read one
// before it knows what the broker supports.
func (r *request) responseHeaderFlexible() bool {
	return r.flexible && r.key != int16(kmsg.ApiVersions)
}

// decodeResponse parses a response frame for r.
func (r *request) decodeResponse(frame []byte) (kmsg.Response, error) {
	if r.kreq == nil {
		return nil, errors.New("unknown request key")
	}
	b := kbin.Reader{Src: frame}
	if corr := b.Int32(); corr != r.corr {
		return nil, fmt.Errorf("response correlation id %d, want %d", corr, r.corr)
	}
	if r.responseHeaderFlexible() {
		kmsg.SkipTags(&b)
	}
	if !b.Ok() {
		return nil, errors.New("malformed response header")
	}
	resp := r.kreq.ResponseKind()
	resp.SetVersion(r.version)
	if err := resp.ReadFrom(b.Src); err != nil {
		return nil, fmt.Errorf("decode %s v%d response: %w", kmsg.NameForKey(r.key), r.version, err)
	}
	return resp, nil
}

// encodeResponse serializes resp with the response header r calls for.
func (r *request) encodeResponse(resp kmsg.Response) []byte {
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 512), uint32(r.corr))
	if r.responseHeaderFlexible() {
		buf = append(buf, 0) // no tagged fields
	}
	resp.SetVersion(r.version)
	return resp.AppendTo(buf)
}
