package localfleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The fleet's kfleet-ConfigureBroker writes what the real document
// (deploy/ssm) writes, line for line.
func TestServerPropertiesAsTheDocumentWritesThem(t *testing.T) {
	conf := brokerConf{cluster: "c1", broker: 2, rack: "us-east-1b", zkConnect: "10.0.0.1:2181,10.0.0.2:2181/kfleet/c1", dataVolume: "vol-0123456789abcdef0"}
	got := conf.properties("10.0.1.7")
	assert.Equal(t, `broker.id=2
broker.rack=us-east-1b
zookeeper.connect=10.0.0.1:2181,10.0.0.2:2181/kfleet/c1
listeners=PLAINTEXT://0.0.0.0:9092
advertised.listeners=PLAINTEXT://10.0.1.7:9092
log.dirs=/var/lib/kafka/data
default.replication.factor=3
min.insync.replicas=2
num.partitions=8
unclean.leader.election.enable=false
auto.create.topics.enable=false
`, got)

	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "ssm", "kfleet-ConfigureBroker.yaml"))
	require.NoError(t, err)
	var doc struct {
		MainSteps []struct {
			Inputs struct {
				RunCommand []string `yaml:"runCommand"`
			} `yaml:"inputs"`
		} `yaml:"mainSteps"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	script := doc.MainSteps[0].Inputs.RunCommand[0]
	_, heredoc, ok := strings.Cut(script, "<<EOF\n")
	require.True(t, ok, "the document writes server.properties from a heredoc")
	heredoc, _, ok = strings.Cut(heredoc, "EOF\n")
	require.True(t, ok)
	written := strings.NewReplacer("${broker_id}", "2", "${rack}", "us-east-1b", "${zk}", conf.zkConnect,
		"${ip}", "10.0.1.7", "${log_dir}", logDir).Replace(heredoc)
	assert.Equal(t, written, got)
}
