package localfleet_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// manualClock is a fleet clock that moves only when a test says so, so that
// hours of disk growth and EBS's 6-hour rule take no time.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func newManualClock() *manualClock {
	return &manualClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// hostTestCluster is a 3-broker cluster over 3 racks whose volume
// modifications take 1 minute modifying and 10 minutes optimizing on the
// manual clock.
func hostTestCluster(id string) localfleet.ClusterConfig {
	cc := testCluster(id)
	cc.Racks = 3
	cc.Volume = localfleet.VolumeConfig{SizeGiB: 100, UsedPercent: 40, Modifying: time.Minute, Optimizing: 10 * time.Minute}
	return cc
}

// startClockedFleet starts a fleet on a manual clock.
func startClockedFleet(t *testing.T, cc localfleet.ClusterConfig) (*localfleet.Fleet, *manualClock) {
	t.Helper()
	z := startZooKeeper(t)
	clock := newManualClock()
	f, err := localfleet.Start(testContext(t), localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}}, localfleet.Options{
		ZooKeeper: z.Addr, DataDir: t.TempDir(), Logger: testLogger(t), Now: clock.Now,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	return f, clock
}

func ec2Client(f *localfleet.Fleet) *ec2.Client {
	ep := f.Endpoints().AWS
	return ec2.NewFromConfig(aws.Config{
		Region:      ep.Region,
		Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, ""),
	}, func(o *ec2.Options) { o.BaseEndpoint = aws.String(ep.Endpoint) })
}

func ec2Filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

// The real aws-sdk-go-v2 EC2 client describes the fleet's hosts and volumes.
func TestIntegrationEC2Describe(t *testing.T) {
	f, _ := startClockedFleet(t, hostTestCluster("local-a"))
	ctx := testContext(t)
	cl := ec2Client(f)
	brokers := f.Endpoints().Clusters["local-a"].Brokers
	vol2, err := f.Volume("local-a", 2)
	require.NoError(t, err)
	require.Regexp(t, `^vol-[0-9a-f]{17}$`, vol2.VolumeID)

	t.Run("instances", func(t *testing.T) {
		tests := []struct {
			name    string
			in      ec2.DescribeInstancesInput
			brokers []int // indexes into brokers
		}{
			{"all", ec2.DescribeInstancesInput{}, []int{0, 1, 2}},
			{"by id", ec2.DescribeInstancesInput{InstanceIds: []string{brokers[1].InstanceID}}, []int{1}},
			{"instance-id filter", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{ec2Filter("instance-id", brokers[2].InstanceID, brokers[0].InstanceID)}}, []int{0, 2}},
			{"tag filters", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
				ec2Filter("tag:"+cloud.TagCluster, "local-a"), ec2Filter("tag:"+cloud.TagBrokerID, "3"),
			}}, []int{2}},
			{"tag wildcard", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{ec2Filter("tag:Name", "local-a-broker-*")}}, []int{0, 1, 2}},
			{"no match", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{ec2Filter("tag:"+cloud.TagCluster, "other")}}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, err := cl.DescribeInstances(ctx, &tt.in)
				require.NoError(t, err)
				var got []string
				for _, r := range out.Reservations {
					require.NotEmpty(t, aws.ToString(r.ReservationId))
					for _, in := range r.Instances {
						got = append(got, aws.ToString(in.InstanceId))
					}
				}
				var want []string
				for _, i := range tt.brokers {
					want = append(want, brokers[i].InstanceID)
				}
				assert.Equal(t, want, got)
			})
		}
	})

	t.Run("instance shape", func(t *testing.T) {
		out, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{brokers[1].InstanceID}})
		require.NoError(t, err)
		in := out.Reservations[0].Instances[0]
		assert.Equal(t, ec2types.InstanceStateNameRunning, in.State.Name)
		assert.Equal(t, int32(16), aws.ToInt32(in.State.Code))
		assert.Equal(t, "us-east-1b", aws.ToString(in.Placement.AvailabilityZone), "the AZ is the broker's rack")
		assert.Equal(t, brokers[1].Rack, aws.ToString(in.Placement.AvailabilityZone))
		assert.Equal(t, "127.0.0.1", aws.ToString(in.PrivateIpAddress))
		assert.False(t, aws.ToTime(in.LaunchTime).IsZero())
		require.Len(t, in.BlockDeviceMappings, 1)
		assert.Equal(t, vol2.VolumeID, aws.ToString(in.BlockDeviceMappings[0].Ebs.VolumeId))
		assert.Contains(t, in.Tags, ec2types.Tag{Key: aws.String(cloud.TagBrokerID), Value: aws.String("2")})
	})

	t.Run("volumes", func(t *testing.T) {
		tests := []struct {
			name string
			in   ec2.DescribeVolumesInput
			want int // volumes expected
		}{
			{"all", ec2.DescribeVolumesInput{}, 3},
			{"by id", ec2.DescribeVolumesInput{VolumeIds: []string{vol2.VolumeID}}, 1},
			{"volume-id filter", ec2.DescribeVolumesInput{Filters: []ec2types.Filter{ec2Filter("volume-id", vol2.VolumeID)}}, 1},
			{"attachment filter", ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
				ec2Filter("attachment.instance-id", brokers[1].InstanceID), ec2Filter("tag:"+cloud.TagRole, cloud.RoleKafkaData),
			}}, 1},
			{"no match", ec2.DescribeVolumesInput{Filters: []ec2types.Filter{ec2Filter("attachment.instance-id", "i-00000000000000000")}}, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, err := cl.DescribeVolumes(ctx, &tt.in)
				require.NoError(t, err)
				require.Len(t, out.Volumes, tt.want)
				if tt.want != 1 {
					return
				}
				v := out.Volumes[0]
				assert.Equal(t, vol2.VolumeID, aws.ToString(v.VolumeId))
				assert.Equal(t, int32(100), aws.ToInt32(v.Size))
				assert.Equal(t, ec2types.VolumeStateInUse, v.State)
				assert.Equal(t, ec2types.VolumeTypeGp3, v.VolumeType)
				assert.Equal(t, "us-east-1b", aws.ToString(v.AvailabilityZone))
				require.Len(t, v.Attachments, 1)
				assert.Equal(t, brokers[1].InstanceID, aws.ToString(v.Attachments[0].InstanceId))
				assert.Equal(t, ec2types.VolumeAttachmentStateAttached, v.Attachments[0].State)
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name string
			call func() error
			code string
		}{
			{"unknown instance", func() error {
				_, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-00000000000000000"}})
				return err
			}, "InvalidInstanceID.NotFound"},
			{"unknown volume", func() error {
				_, err := cl.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-00000000000000000"}})
				return err
			}, "InvalidVolume.NotFound"},
			{"unknown filter", func() error {
				_, err := cl.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{ec2Filter("colour", "blue")}})
				return err
			}, "InvalidParameterValue"},
			{"never modified", func() error {
				_, err := cl.DescribeVolumesModifications(ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{vol2.VolumeID}})
				return err
			}, "InvalidVolumeModification.NotFound"},
			{"modify unknown volume", func() error {
				_, err := cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String("vol-00000000000000000"), Size: aws.Int32(200)})
				return err
			}, "InvalidVolume.NotFound"},
			{"modify without size", func() error {
				_, err := cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(vol2.VolumeID)})
				return err
			}, "InvalidParameterValue"},
			{"shrink", func() error {
				_, err := cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(vol2.VolumeID), Size: aws.Int32(50)})
				return err
			}, "InvalidParameterValue"},
			{"too large", func() error {
				_, err := cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(vol2.VolumeID), Size: aws.Int32(20000)})
				return err
			}, "InvalidParameterValue"},
			{"dry run", func() error {
				_, err := cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(vol2.VolumeID), Size: aws.Int32(200), DryRun: aws.Bool(true)})
				return err
			}, "DryRunOperation"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				assertAPIError(t, tt.call(), tt.code)
			})
		}
		v, err := f.Volume("local-a", 2)
		require.NoError(t, err)
		assert.Empty(t, v.ModificationState, "refused and dry-run modifications change nothing")
		assert.Equal(t, int32(100), v.SizeGiB)
	})

	t.Run("protocol errors", func(t *testing.T) {
		tests := []struct {
			name   string
			form   url.Values
			sign   bool
			status int
			code   string
		}{
			{"unknown action", url.Values{"Action": {"RebootInstances"}, "Version": {"2016-11-15"}}, true, http.StatusBadRequest, "InvalidAction"},
			{"unsigned", url.Values{"Action": {"DescribeVolumes"}, "Version": {"2016-11-15"}}, false, http.StatusForbidden, "MissingAuthenticationToken"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.Endpoints().AWS.Endpoint+"/", strings.NewReader(tt.form.Encode()))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tt.sign {
					req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+localfleet.AWSAccessKeyID+"/20260301/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				assert.Equal(t, tt.status, resp.StatusCode)
				assert.Contains(t, string(body), "<Response><Errors><Error><Code>"+tt.code+"</Code>")
				assert.Contains(t, string(body), "<RequestID>")
			})
		}
	})
}

// A volume modification follows EBS: the volume's size changes at once,
// the state goes modifying -> optimizing -> completed, one modification per
// 6 hours, and the broker's filesystem grows only through
// kfleet-GrowFilesystem.
func TestIntegrationEC2ModifyVolume(t *testing.T) {
	f, clock := startClockedFleet(t, hostTestCluster("local-a"))
	ctx := testContext(t)
	cl := ec2Client(f)
	ssmc := ssmClient(f)
	instance := f.Endpoints().Clusters["local-a"].Brokers[0].InstanceID
	before, err := f.Volume("local-a", 1)
	require.NoError(t, err)
	require.Equal(t, int64(100)<<30, before.FilesystemBytes)
	volID := aws.String(before.VolumeID)

	modificationState := func() (ec2types.VolumeModificationState, int64) {
		t.Helper()
		out, err := cl.DescribeVolumesModifications(ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{before.VolumeID}})
		require.NoError(t, err)
		require.Len(t, out.VolumesModifications, 1)
		m := out.VolumesModifications[0]
		assert.Equal(t, int32(100), aws.ToInt32(m.OriginalSize))
		assert.Equal(t, int32(200), aws.ToInt32(m.TargetSize))
		return m.ModificationState, aws.ToInt64(m.Progress)
	}

	out, err := cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: volID, Size: aws.Int32(200)})
	require.NoError(t, err)
	m := out.VolumeModification
	assert.Equal(t, ec2types.VolumeModificationStateModifying, m.ModificationState)
	assert.Equal(t, before.VolumeID, aws.ToString(m.VolumeId))
	assert.Equal(t, int32(100), aws.ToInt32(m.OriginalSize))
	assert.Equal(t, int32(200), aws.ToInt32(m.TargetSize))
	assert.Equal(t, clock.Now(), aws.ToTime(m.StartTime))

	vols, err := cl.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{before.VolumeID}})
	require.NoError(t, err)
	assert.Equal(t, int32(200), aws.ToInt32(vols.Volumes[0].Size), "the volume's size is the target size at once")
	v, err := f.Volume("local-a", 1)
	require.NoError(t, err)
	assert.Equal(t, before.FilesystemBytes, v.FilesystemBytes, "the filesystem has not grown")
	assert.Equal(t, localfleet.ModificationModifying, v.ModificationState)

	// While modifying: no second modification, no filesystem growth.
	_, err = cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: volID, Size: aws.Int32(300)})
	assertAPIError(t, err, "IncorrectModificationState")
	inv := runCommand(ctx, t, ssmc, cloud.DocGrowFilesystem, instance, "expand/1", nil)
	assert.Equal(t, "Failed", string(inv.Status))
	assert.Contains(t, aws.ToString(inv.StandardErrorContent), "modifying")

	state, progress := modificationState()
	assert.Equal(t, ec2types.VolumeModificationStateModifying, state)
	assert.Zero(t, progress)
	clock.Advance(90 * time.Second)
	state, progress = modificationState()
	assert.Equal(t, ec2types.VolumeModificationStateOptimizing, state)
	assert.Equal(t, int64(13), progress, "90s of 11 minutes")

	// From optimizing on the filesystem can grow, online and once.
	inv = runCommand(ctx, t, ssmc, cloud.DocGrowFilesystem, instance, "expand/1", map[string][]string{cloud.ParamTargetSizeGiB: {"200"}})
	require.Equal(t, "Success", string(inv.Status), aws.ToString(inv.StandardErrorContent))
	assert.Contains(t, aws.ToString(inv.StandardOutputContent), "from 100 GiB to 200 GiB")
	inv = runCommand(ctx, t, ssmc, cloud.DocGrowFilesystem, instance, "expand/1", nil)
	require.Equal(t, "Success", string(inv.Status))
	assert.Contains(t, aws.ToString(inv.StandardOutputContent), "nothing to do")
	v, err = f.Volume("local-a", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(200)<<30, v.FilesystemBytes)
	brokerState, err := f.BrokerState("local-a", 1)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateRunning, brokerState, "no restart")

	clock.Advance(10 * time.Minute)
	state, progress = modificationState()
	assert.Equal(t, ec2types.VolumeModificationStateCompleted, state)
	assert.Equal(t, int64(100), progress)

	// The 6-hour rule counts from the start of the previous modification.
	clock.Advance(6*time.Hour - 12*time.Minute)
	_, err = cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: volID, Size: aws.Int32(300)})
	assertAPIError(t, err, "VolumeModificationRateExceeded")
	assert.ErrorContains(t, err, "Wait at least 6 hours between modifications per EBS volume.")
	_, err = cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: volID, Size: aws.Int32(150)})
	assertAPIError(t, err, "InvalidParameterValue")
	assert.ErrorContains(t, err, "New size cannot be smaller than existing size")
	clock.Advance(2 * time.Minute)
	out, err = cl.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: volID, Size: aws.Int32(300)})
	require.NoError(t, err)
	assert.Equal(t, int32(200), aws.ToInt32(out.VolumeModification.OriginalSize))

	// A target size the volume has not reached is refused by the document.
	inv = runCommand(ctx, t, ssmc, cloud.DocGrowFilesystem, instance, "expand/2", map[string][]string{cloud.ParamTargetSizeGiB: {"400"}})
	assert.Equal(t, "Failed", string(inv.Status))
	assert.Contains(t, aws.ToString(inv.StandardErrorContent), "not yet 400 GiB")

	var kinds []localfleet.EventKind
	var details []string
	for _, e := range f.Audit("local-a") {
		if e.Kind == localfleet.EventVolumeModified || e.Kind == localfleet.EventFilesystemGrown {
			kinds = append(kinds, e.Kind)
			details = append(details, e.Detail)
			assert.Equal(t, int32(1), e.Broker)
		}
	}
	assert.Equal(t, []localfleet.EventKind{localfleet.EventVolumeModified, localfleet.EventFilesystemGrown, localfleet.EventVolumeModified}, kinds)
	assert.Contains(t, details[0], "100 GiB -> 200 GiB")
	assert.Empty(t, f.Violations("local-a"))
}

// hostsHTTP calls the fleet API and decodes its JSON answer into out (when
// not nil), checking the status.
func hostsHTTP(ctx context.Context, t *testing.T, method, url string, status int, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, string(body))
	if out != nil {
		require.NoError(t, json.Unmarshal(body, out), string(body))
	}
}

// fill-disk makes used bytes grow with the fleet clock, up to the
// filesystem's size; the Go API and the HTTP API agree.
func TestIntegrationFillDisk(t *testing.T) {
	f, clock := startClockedFleet(t, hostTestCluster("local-a"))
	ctx := testContext(t)
	base := f.Endpoints().API + "/v1/clusters/local-a/brokers"

	v, err := f.Volume("local-a", 3)
	require.NoError(t, err)
	assert.Equal(t, int64(40)<<30, v.UsedBytes, "40% of 100 GiB")
	assert.InDelta(t, 40, v.UsedPercent, 1e-9)

	require.NoError(t, f.FillDisk("local-a", 3, 1<<30))
	clock.Advance(10 * time.Second)
	v, err = f.Volume("local-a", 3)
	require.NoError(t, err)
	assert.Equal(t, int64(50)<<30, v.UsedBytes)
	assert.Equal(t, int64(1)<<30, v.GrowthBytesPerSec)

	// Through HTTP: a slower rate from now on; growth so far is kept.
	var st localfleet.VolumeStatus
	hostsHTTP(ctx, t, http.MethodPost, base+"/3/faults/fill-disk?bytesPerSec=1048576", http.StatusOK, &st)
	assert.Equal(t, int64(1)<<20, st.GrowthBytesPerSec)
	clock.Advance(1024 * time.Second)
	hostsHTTP(ctx, t, http.MethodGet, base+"/3/volume", http.StatusOK, &st)
	assert.Equal(t, int64(51)<<30, st.UsedBytes)
	assert.Equal(t, v.VolumeID, st.VolumeID)

	// A full disk stays full.
	clock.Advance(1000 * time.Hour)
	hostsHTTP(ctx, t, http.MethodGet, base+"/3/volume", http.StatusOK, &st)
	assert.Equal(t, st.FilesystemBytes, st.UsedBytes)

	// Brokers report the filesystem in DescribeLogDirs, as Kafka >= 3.3 does.
	_, adm := kafkaClient(t, f, "local-a")
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	require.NoError(t, err)
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Broker == 3 {
			assert.Equal(t, st.FilesystemBytes, d.TotalBytes)
			assert.Zero(t, d.UsableBytes, "full")
		}
	})

	other, err := f.Volume("local-a", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(40)<<30, other.UsedBytes, "other brokers are untouched")

	tests := []struct {
		name, method, path string
		status             int
	}{
		{"negative rate", http.MethodPost, "/3/faults/fill-disk?bytesPerSec=-1", http.StatusBadRequest},
		{"missing rate", http.MethodPost, "/3/faults/fill-disk", http.StatusBadRequest},
		{"unknown broker", http.MethodPost, "/9/faults/fill-disk?bytesPerSec=1", http.StatusNotFound},
		{"bad broker", http.MethodGet, "/x/volume", http.StatusBadRequest},
		{"unknown broker volume", http.MethodGet, "/9/volume", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostsHTTP(ctx, t, tt.method, base+tt.path, tt.status, nil)
		})
	}
	var out map[string]any
	hostsHTTP(ctx, t, http.MethodGet, f.Endpoints().API+"/v1/clusters/nope/brokers/1/volume", http.StatusNotFound, &out)
	assert.Contains(t, out["error"], "unknown cluster")
}
