package deploycheck

import (
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

// need says how a deployment must treat an environment variable.
type need int

const (
	// required: the manifests must set it.
	required need = iota + 1
	// optional: deliberately unset unless an overlay needs it (its
	// default suits production, or it is for the local fleet only).
	optional
	// secret: optional, and when set only from a Secret (secretKeyRef),
	// never a literal value or a ConfigMap.
	secret
)

// temporalEnv are the Temporal SDK's envconfig variables
// (go.temporal.io/sdk/contrib/envconfig, ClientConfigProfile.ApplyEnvVars)
// every kfleet process reads through envconfig.LoadDefaultClientOptions.
var temporalEnv = map[string]need{
	"TEMPORAL_ADDRESS":                       required,
	"TEMPORAL_NAMESPACE":                     required,
	"TEMPORAL_API_KEY":                       secret,
	"TEMPORAL_CLIENT_AUTHORITY":              optional,
	"TEMPORAL_TLS":                           optional,
	"TEMPORAL_TLS_CLIENT_CERT_PATH":          optional,
	"TEMPORAL_TLS_CLIENT_CERT_DATA":          secret,
	"TEMPORAL_TLS_CLIENT_KEY_PATH":           optional,
	"TEMPORAL_TLS_CLIENT_KEY_DATA":           secret,
	"TEMPORAL_TLS_SERVER_CA_CERT_PATH":       optional,
	"TEMPORAL_TLS_SERVER_CA_CERT_DATA":       optional,
	"TEMPORAL_TLS_SERVER_NAME":               optional,
	"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": optional,
	"TEMPORAL_CODEC_ENDPOINT":                optional,
	"TEMPORAL_CODEC_AUTH":                    secret,
	"TEMPORAL_CONFIG_FILE":                   optional,
	"TEMPORAL_PROFILE":                       optional,
	// Every process of a deployment polls and starts on one task queue
	// (workflows.QueueFromEnv).
	"KFLEET_TASK_QUEUE": required,
}

// workerEnv are the variables the worker reads (worker/main.go,
// worker/provision_env.go; TestWorkerEnvCoversTheSource keeps this list
// complete), besides temporalEnv and the AWS SDK's.
var workerEnv = map[string]need{
	secrets.EnvVar:          required, // the secret source: aws, aws:prefix/ or file:DIR
	"KFLEET_METRICS_ADDR":   required, // beyond loopback, for Prometheus to scrape
	"KFLEET_NOTIFY_WEBHOOK": secret,
	// The local fleet's endpoint: production uses AWS's own.
	"KFLEET_AWS_ENDPOINT":  optional,
	"KFLEET_POLL_INTERVAL": optional,
	// Concurrency (workerapp.Slots): the defaults until sizing says more.
	"KFLEET_MAX_ACTIVITIES":     optional,
	"KFLEET_MAX_WORKFLOW_TASKS": optional,
	"KFLEET_MAX_SENSING":        optional,
	"KFLEET_ACTIVITY_POLLERS":   optional,
	"KFLEET_WORKFLOW_POLLERS":   optional,
	"KFLEET_SENSING_POLLERS":    optional,
	// Provisioning: needed only where kfleet creates clusters.
	"KFLEET_HOST_IMAGE":            optional,
	"KFLEET_ZOOKEEPER_IMAGE":       optional,
	"KFLEET_HOST_SUBNETS":          optional,
	"KFLEET_HOST_SECURITY_GROUPS":  optional,
	"KFLEET_HOST_INSTANCE_PROFILE": optional,
	"KFLEET_BROKER_METRICS_URL":    optional,
	"KFLEET_EC2_WAIT_DELAYS":       optional,
	fleet.PlansEnv:                 optional, // the tenant plans catalog; default the embedded one
	// The AWS SDK's default chain: IRSA injects the role and token file.
	"AWS_REGION":                  optional,
	"AWS_DEFAULT_REGION":          optional,
	"AWS_ROLE_ARN":                optional,
	"AWS_WEB_IDENTITY_TOKEN_FILE": optional,
	"AWS_STS_REGIONAL_ENDPOINTS":  optional,
}

// frontendEnv are the ChatOps server's and the overview page's variables
// besides temporalEnv.
var frontendEnv = map[string]need{
	"KFLEET_SLACK_SIGNING_SECRET": secret,
	fleet.PlansEnv:                optional,
}

// envFor is what a container of the given component may set.
func envFor(component string) map[string]need {
	m := map[string]need{}
	for k, v := range temporalEnv {
		m[k] = v
	}
	extra := frontendEnv
	if component == componentWorker {
		extra = workerEnv
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}
