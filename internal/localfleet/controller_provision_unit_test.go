package localfleet

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// documentScript is the shell script of a deploy/ssm document's first
// step.
func documentScript(t *testing.T, doc string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "ssm", doc+".yaml"))
	require.NoError(t, err)
	var d struct {
		MainSteps []struct {
			Inputs struct {
				RunCommand []string `yaml:"runCommand"`
			} `yaml:"inputs"`
		} `yaml:"mainSteps"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &d))
	return d.MainSteps[0].Inputs.RunCommand[0]
}

// A KRaft broker's server.properties as kfleet-ConfigureBroker's second
// heredoc writes it.
func TestKRaftBrokerPropertiesAsTheDocumentWritesThem(t *testing.T) {
	conf := brokerConf{cluster: "c1", broker: 2, rack: "us-east-1b", dataVolume: "vol-0123456789abcdef0",
		voters: "3000@10.0.1.5:9093,3001@10.0.2.6:9093,3002@10.0.3.7:9093", kafkaClusterID: "MkU3OEVBNTcwNTJENDM2Qg"}
	script := documentScript(t, "kfleet-ConfigureBroker")
	parts := strings.Split(script, "<<EOF\n")
	require.Len(t, parts, 3, "a ZooKeeper broker's heredoc, then a KRaft broker's")
	heredoc, _, ok := strings.Cut(parts[2], "EOF\n")
	require.True(t, ok)
	written := strings.NewReplacer("${broker_id}", "2", "${rack}", "us-east-1b", "${voters}", conf.voters,
		"${ip}", "10.0.1.7", "${log_dir}", logDir).Replace(heredoc)
	assert.Equal(t, written, conf.properties("10.0.1.7"))
}

// A controller's server.properties as kfleet-ConfigureController's
// echo lines write it, with and without the migration.
func TestControllerPropertiesAsTheDocumentWritesThem(t *testing.T) {
	script := documentScript(t, "kfleet-ConfigureController")
	echo := regexp.MustCompile(`(?m)^\s*echo "([a-z.]+=[^"]*)"$`)
	var always, migration []string
	inMigration := false
	for _, line := range strings.Split(script, "\n") {
		if strings.Contains(line, `if [ -n "${zk}" ]; then`) && len(always) > 0 {
			inMigration = true
		}
		m := echo.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if inMigration {
			migration = append(migration, m[1])
		} else {
			always = append(always, m[1])
		}
	}
	r := strings.NewReplacer("${node_id}", "3001", "${rack}", "us-east-1b", "${voters}", "3001@10.0.2.6:9093",
		"${ip}", "10.0.2.6", "${log_dir}", controllerLogDir, "${zk}", "10.0.0.1:2181/kfleet/c1")
	render := func(lines []string) string { return r.Replace(strings.Join(lines, "\n") + "\n") }
	conf := controllerConf{cluster: "c1", node: 3001, rack: "us-east-1b", voters: "3001@10.0.2.6:9093"}
	assert.Equal(t, render(always), conf.properties("10.0.2.6"))
	conf.zkConnect = "10.0.0.1:2181/kfleet/c1"
	assert.Equal(t, render(append(always, migration...)), conf.properties("10.0.2.6"))
}
