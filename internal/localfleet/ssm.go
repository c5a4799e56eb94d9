package localfleet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/rs/zerolog"
)

// The AWS SSM subset internal/cloud uses, served with the AWS JSON 1.1
// protocol: POST / with X-Amz-Target "AmazonSSM.<Operation>" (SendCommand,
// GetCommandInvocation, and ListCommands in ssm_list.go). Documents run
// against the fleet's brokers instead of shell scripts on hosts.

const (
	ssmTargetPrefix = "AmazonSSM."
	ssmContentType  = "application/x-amz-json-1.1"
	ssmPluginName   = "aws:runShellScript"
	maxSSMBody      = 1 << 20
)

// SSM command statuses (also used as StatusDetails).
const (
	ssmPending    = "Pending"
	ssmInProgress = "InProgress"
	ssmSuccess    = "Success"
	ssmFailed     = "Failed"
)

// ssmDocuments lists the documents the fleet runs and their parameters:
// every document kfleet has. The broker's stop, start and status are run
// here (execute); the filesystem in hosts_api.go; the limits and the log
// in faults.go; kfleet-ConfigureBroker in provision.go.
var ssmDocuments = cloud.DocumentParameters()

// requiredParameters are the parameters without a default: SendCommand
// refuses a command without them, as SSM does.
var requiredParameters = map[string][]string{
	cloud.DocConfigureBroker:    {cloud.ParamClusterID, cloud.ParamBrokerID, cloud.ParamDataVolumeID},
	cloud.DocConfigureZooKeeper: {cloud.ParamClusterID, cloud.ParamMyID, cloud.ParamServers},
	cloud.DocConfigureController: {cloud.ParamClusterID, cloud.ParamNodeID, cloud.ParamQuorumVoters,
		cloud.ParamKafkaClusterID, cloud.ParamMetadataVersion},
}

// ssmError is an error in AWS's JSON protocol shape.
type ssmError struct {
	status int
	code   string
	msg    string
}

func (e *ssmError) Error() string { return e.code + ": " + e.msg }

func ssmErr(code, format string, args ...any) *ssmError {
	return &ssmError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

type ssmService struct {
	f *Fleet

	mu       sync.Mutex
	commands map[string]*ssmCommand
}

type ssmCommand struct {
	id         string
	document   string
	instances  []string
	parameters map[string][]string
	comment    string
	requested  time.Time
	// Guarded by ssmService.mu.
	invocations map[string]*ssmInvocation
}

type ssmInvocation struct {
	status         string
	stdout, stderr string
	started, ended time.Time
}

func newSSMService(f *Fleet) *ssmService {
	return &ssmService{f: f, commands: map[string]*ssmCommand{}}
}

func (s *ssmService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, err := s.serve(r)
	writeAWSJSON(w, r, s.f.log, out, err, "InternalServerError")
}

// writeAWSJSON answers an AWS JSON-protocol request (SSM, Secrets
// Manager): out, or err as AWS writes errors (X-Amzn-ErrorType and a
// __type/message body); an error that is no ssmError is internalCode.
// Error messages are logged: they name resources, never secret values.
func writeAWSJSON(w http.ResponseWriter, r *http.Request, log zerolog.Logger, out any, err error, internalCode string) {
	if err != nil {
		var se *ssmError
		if !errors.As(err, &se) {
			se = &ssmError{status: http.StatusInternalServerError, code: internalCode, msg: err.Error()}
		}
		log.Debug().Str("target", r.Header.Get("X-Amz-Target")).Str("code", se.code).Msg(se.msg)
		w.Header().Set("Content-Type", ssmContentType)
		w.Header().Set("X-Amzn-ErrorType", se.code)
		w.WriteHeader(se.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": se.code, "message": se.msg})
		return
	}
	w.Header().Set("Content-Type", ssmContentType)
	_ = json.NewEncoder(w).Encode(out)
}

func (s *ssmService) serve(r *http.Request) (any, error) {
	if err := checkAuthorization(r.Header.Get("Authorization")); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSSMBody))
	if err != nil {
		return nil, ssmErr("SerializationException", "read body: %v", err)
	}
	switch target := r.Header.Get("X-Amz-Target"); target {
	case ssmTargetPrefix + "SendCommand":
		var in sendCommandInput
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, ssmErr("SerializationException", "%v", err)
		}
		return s.sendCommand(in)
	case ssmTargetPrefix + "GetCommandInvocation":
		var in getCommandInvocationInput
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, ssmErr("SerializationException", "%v", err)
		}
		return s.getCommandInvocation(in)
	case ssmTargetPrefix + "ListCommands":
		var in listCommandsInput
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, ssmErr("SerializationException", "%v", err)
		}
		return s.listCommands(in)
	default:
		return nil, ssmErr("UnknownOperationException", "operation %q is not served by the local fleet", target)
	}
}

// checkAuthorization requires a SigV4 Authorization header made with the
// fleet's access key id. Signatures are not verified: this catches clients
// that are not configured for the fleet, not attackers.
func checkAuthorization(auth string) error {
	if auth == "" {
		return &ssmError{status: http.StatusForbidden, code: "MissingAuthenticationTokenException",
			msg: "Request is missing Authentication Token"}
	}
	if !strings.Contains(auth, "Credential="+AWSAccessKeyID+"/") {
		return &ssmError{status: http.StatusForbidden, code: "UnrecognizedClientException",
			msg: "The security token included in the request is invalid (use access key id " + AWSAccessKeyID + ")"}
	}
	return nil
}

type sendCommandInput struct {
	DocumentName string              `json:"DocumentName"`
	InstanceIds  []string            `json:"InstanceIds"`
	Parameters   map[string][]string `json:"Parameters"`
	Comment      string              `json:"Comment"`
}

type sendCommandOutput struct {
	Command commandJSON `json:"Command"`
}

type commandJSON struct {
	CommandID         string              `json:"CommandId"`
	DocumentName      string              `json:"DocumentName"`
	InstanceIds       []string            `json:"InstanceIds"`
	Status            string              `json:"Status"`
	StatusDetails     string              `json:"StatusDetails"`
	Parameters        map[string][]string `json:"Parameters"`
	Comment           string              `json:"Comment,omitempty"`
	RequestedDateTime float64             `json:"RequestedDateTime"` // epoch seconds, as JSON 1.1 encodes timestamps
	TargetCount       int                 `json:"TargetCount"`
	CompletedCount    int                 `json:"CompletedCount"`
	ErrorCount        int                 `json:"ErrorCount"`
}

func (s *ssmService) sendCommand(in sendCommandInput) (any, error) {
	allowed, ok := ssmDocuments[in.DocumentName]
	if !ok {
		return nil, ssmErr("InvalidDocument", "document %q does not exist", in.DocumentName)
	}
	if len(in.InstanceIds) == 0 {
		return nil, ssmErr("InvalidInstanceId", "no instance ids given")
	}
	var notRunning []string
	for _, id := range in.InstanceIds {
		if s.f.hosts.instanceState(id) == "" {
			return nil, ssmErr("InvalidInstanceId", "instance %q is not an instance of the local fleet", id)
		}
		// The SSM agent runs on the instance: a stopped or terminated
		// one cannot take commands, and SSM refuses them up front.
		if s.f.hosts.instanceState(id) != InstanceRunning {
			notRunning = append(notRunning, id)
		}
	}
	if len(notRunning) > 0 {
		return nil, ssmErr("InvalidInstanceId", "Instances [[%s]] not in a valid state for account %s",
			strings.Join(notRunning, ", "), ec2OwnerID)
	}
	if err := validateParameters(in.DocumentName, allowed, in.Parameters); err != nil {
		return nil, err
	}

	cmd := &ssmCommand{
		id:          newCommandID(),
		document:    in.DocumentName,
		instances:   slices.Clone(in.InstanceIds),
		parameters:  in.Parameters,
		comment:     in.Comment,
		requested:   time.Now(),
		invocations: map[string]*ssmInvocation{},
	}
	s.mu.Lock()
	s.commands[cmd.id] = cmd
	for _, id := range cmd.instances {
		cmd.invocations[id] = &ssmInvocation{status: ssmPending}
	}
	s.mu.Unlock()
	for _, id := range cmd.instances {
		s.f.wg.Add(1)
		go s.run(cmd, id)
	}
	return sendCommandOutput{Command: commandJSON{
		CommandID:         cmd.id,
		DocumentName:      cmd.document,
		InstanceIds:       cmd.instances,
		Status:            ssmPending,
		StatusDetails:     ssmPending,
		Parameters:        cmd.parameters,
		Comment:           cmd.comment,
		RequestedDateTime: float64(cmd.requested.UnixMilli()) / 1000,
		TargetCount:       len(cmd.instances),
	}}, nil
}

func validateParameters(doc string, allowed []string, params map[string][]string) error {
	for _, name := range requiredParameters[doc] {
		if _, ok := params[name]; !ok {
			return ssmErr("InvalidParameters", "document %s requires parameter %q", doc, name)
		}
	}
	for name, values := range params {
		if !slices.Contains(allowed, name) {
			return ssmErr("InvalidParameters", "document %s has no parameter %q (allowed: %v)", doc, name, allowed)
		}
		if len(values) != 1 {
			return ssmErr("InvalidParameters", "parameter %q takes exactly one value, got %d", name, len(values))
		}
		if name == cloud.ParamGracePeriodSeconds || name == cloud.ParamTargetSizeGiB {
			if n, err := strconv.Atoi(values[0]); err != nil || n < 0 {
				return ssmErr("InvalidParameters", "parameter %q must be a non-negative integer, got %q", name, values[0])
			}
		}
		if err := validateHostParameter(name, values[0]); err != nil {
			return err
		}
		re, ok := startBrokerPatterns[name]
		switch doc {
		case cloud.DocConfigureBroker:
			re, ok = configureBrokerPatterns[name]
		case cloud.DocConfigureZooKeeper:
			re, ok = configureZooKeeperPatterns[name]
		case cloud.DocConfigureController:
			re, ok = configureControllerPatterns[name]
		}
		if ok && !re.MatchString(values[0]) {
			return ssmErr("InvalidParameters", "parameter %q must match %s, got %q", name, re, values[0])
		}
	}
	return nil
}

// startBrokerPatterns are kfleet-StartBroker's allowedPattern values.
var startBrokerPatterns = map[string]*regexp.Regexp{
	cloud.ParamVersion:                    regexp.MustCompile(`^([0-9]+\.[0-9]+\.[0-9]+)?$`),
	cloud.ParamInterBrokerProtocolVersion: regexp.MustCompile(`^([0-9]+\.[0-9]+(-IV[0-9]+)?)?$`),
	cloud.ParamMetadataMode:               regexp.MustCompile(`^(zookeeper|migration|kraft)?$`),
	cloud.ParamQuorumVoters:               regexp.MustCompile(`^(` + strings.Trim(quorumVotersPattern.String(), "^$") + `)?$`),
}

// run executes the command's document on one instance.
func (s *ssmService) run(cmd *ssmCommand, instance string) {
	defer s.f.wg.Done()
	s.update(cmd, instance, func(inv *ssmInvocation) {
		inv.status, inv.started = ssmInProgress, time.Now()
	})
	stdout, err := s.execute(s.f.life, cmd, instance)
	s.update(cmd, instance, func(inv *ssmInvocation) {
		inv.ended, inv.stdout, inv.status = time.Now(), stdout, ssmSuccess
		if err != nil {
			inv.status, inv.stderr = ssmFailed, err.Error()+"\n"
		}
	})
}

func (s *ssmService) update(cmd *ssmCommand, instance string, fn func(*ssmInvocation)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(cmd.invocations[instance])
}

// execute runs a document on an instance. Documents about Kafka act on
// the broker that runs there; where none does (a host not configured
// yet, or one its broker has moved away from) they answer as on such a
// host: nothing runs, nothing to stop.
func (s *ssmService) execute(ctx context.Context, cmd *ssmCommand, instance string) (string, error) {
	who := cmd.comment
	if who == "" {
		who = "ssm:" + cmd.id
	}
	param := func(name string) string {
		if v := cmd.parameters[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if cmd.document == cloud.DocConfigureController {
		return s.f.configureController(instance, param, who) // controller_provision.go
	}
	if c, ctl, ok := s.f.hostedController(instance); ok {
		return s.f.controllerDocument(ctx, c, ctl, cmd.document, who, param) // kraft_hosts.go
	}
	if conf := s.f.hosts.controllerConf(instance); conf != nil {
		// A configured controller host where no controller runs yet.
		if cmd.document != cloud.DocStartBroker {
			return s.f.controllerHostOutput(instance, cmd.document, *conf)
		}
		c, ctl, err := s.f.startControllerHost(ctx, instance, who, param(cloud.ParamVersion), param(cloud.ParamMetadataMode))
		if err != nil {
			return "", err
		}
		return c.controllerStartedOutput(ctl), nil
	}
	switch cmd.document {
	case cloud.DocConfigureBroker:
		return s.f.configureBroker(instance, param, who)
	case cloud.DocConfigureZooKeeper:
		return s.f.configureZooKeeper(instance, param, who)
	case cloud.DocStartBroker:
		start := startParams{version: param(cloud.ParamVersion), ibp: param(cloud.ParamInterBrokerProtocolVersion),
			mode: param(cloud.ParamMetadataMode), voters: param(cloud.ParamQuorumVoters)}
		if err := s.f.startOnHost(ctx, instance, who, start); err != nil {
			return "", err
		}
		c, b, ok := s.f.hostedBroker(instance)
		if !ok { // moved on meanwhile (another host took it over)
			return "kafka started\n", nil
		}
		return c.brokerStartedOutput(b), nil
	}
	c, b, hosted := s.f.hostedBroker(instance)
	if !hosted {
		return s.f.idleHostOutput(instance, cmd.document)
	}
	ref := instanceRef{cluster: c.id, broker: b.id}
	switch cmd.document {
	case cloud.DocStopBroker:
		if err := s.f.StopBroker(ctx, ref.cluster, ref.broker, who); err != nil {
			return "", err
		}
		return fmt.Sprintf("broker %d stopped\n", ref.broker), nil
	case cloud.DocBrokerStatus:
		state, err := s.f.BrokerState(ref.cluster, ref.broker)
		if err != nil {
			return "", err
		}
		out, err := s.f.brokerStatusOutput(ref, state)
		if err != nil {
			return "", err
		}
		// The mode the broker runs (or will start) in, after the state.
		first, rest, _ := strings.Cut(out, "\n")
		return first + "\n" + c.brokerModeLine(b) + rest, nil
	case cloud.DocSetSysctl:
		return s.f.setSysctl(ctx, ref, who, param(cloud.ParamName), param(cloud.ParamValue))
	case cloud.DocTailLog:
		return s.f.tailLog(ref, param(cloud.ParamLines))
	case cloud.DocHostLimits:
		return s.f.hostLimitsOutput(ref)
	case cloud.DocGrowFilesystem:
		target, _ := strconv.Atoi(param(cloud.ParamTargetSizeGiB)) // validated; "" is 0
		return s.f.growFilesystem(ref, who, target)
	}
	return "", fmt.Errorf("document %q has no implementation", cmd.document)
}

type getCommandInvocationInput struct {
	CommandID  string `json:"CommandId"`
	InstanceID string `json:"InstanceId"`
}

type getCommandInvocationOutput struct {
	CommandID              string `json:"CommandId"`
	InstanceID             string `json:"InstanceId"`
	Comment                string `json:"Comment,omitempty"`
	DocumentName           string `json:"DocumentName"`
	DocumentVersion        string `json:"DocumentVersion"`
	PluginName             string `json:"PluginName"`
	Status                 string `json:"Status"`
	StatusDetails          string `json:"StatusDetails"`
	ResponseCode           int    `json:"ResponseCode"`
	StandardOutputContent  string `json:"StandardOutputContent"`
	StandardErrorContent   string `json:"StandardErrorContent"`
	ExecutionStartDateTime string `json:"ExecutionStartDateTime,omitempty"`
	ExecutionEndDateTime   string `json:"ExecutionEndDateTime,omitempty"`
}

func (s *ssmService) getCommandInvocation(in getCommandInvocationInput) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd, ok := s.commands[in.CommandID]
	if !ok {
		return nil, ssmErr("InvalidCommandId", "command %q does not exist", in.CommandID)
	}
	inv, ok := cmd.invocations[in.InstanceID]
	if !ok {
		return nil, ssmErr("InvocationDoesNotExist", "command %s did not target instance %q", in.CommandID, in.InstanceID)
	}
	out := getCommandInvocationOutput{
		CommandID:             cmd.id,
		InstanceID:            in.InstanceID,
		Comment:               cmd.comment,
		DocumentName:          cmd.document,
		DocumentVersion:       "$DEFAULT",
		PluginName:            ssmPluginName,
		Status:                inv.status,
		StatusDetails:         inv.status,
		ResponseCode:          -1, // AWS reports -1 until the plugin has run
		StandardOutputContent: inv.stdout,
		StandardErrorContent:  inv.stderr,
	}
	switch inv.status {
	case ssmSuccess:
		out.ResponseCode = 0
	case ssmFailed:
		out.ResponseCode = 1
	}
	if !inv.started.IsZero() {
		out.ExecutionStartDateTime = inv.started.UTC().Format(time.RFC3339Nano)
	}
	if !inv.ended.IsZero() {
		out.ExecutionEndDateTime = inv.ended.UTC().Format(time.RFC3339Nano)
	}
	return out, nil
}

// newCommandID returns a random UUID (version 4), the shape of SSM ids.
func newCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// CommandCounts counts the SSM commands sent to each broker host of
// cluster, by document: what the hosts saw, for tests that hold kfleet to
// one command per step even across worker crashes. A host counts for the
// broker its server.properties names (a replacement host for the broker
// it replaces).
func (f *Fleet) CommandCounts(cluster string) map[int32]map[string]int {
	counts := map[int32]map[string]int{}
	f.ssm.mu.Lock()
	defer f.ssm.mu.Unlock()
	for _, cmd := range f.ssm.commands {
		for _, id := range cmd.instances {
			ref, ok := f.hosts.binding(id)
			if !ok || ref.cluster != cluster {
				continue
			}
			if counts[ref.broker] == nil {
				counts[ref.broker] = map[string]int{}
			}
			counts[ref.broker][cmd.document]++
		}
	}
	return counts
}
