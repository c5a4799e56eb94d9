package cloud

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Modification is a volume's latest size modification.
type Modification struct {
	State    ModificationState
	Progress int64 // 0-100
	// Start is when the modification started: EBS's six-hour cool-down
	// runs from it.
	Start                          time.Time
	OriginalSizeGiB, TargetSizeGiB int32
}

// LatestModification returns the volume's latest modification (the one
// started last); ErrNoModification if it was never modified.
func (e *EC2) LatestModification(ctx context.Context, volumeID string) (Modification, error) {
	out, err := e.client.DescribeVolumesModifications(ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{volumeID}})
	if err != nil {
		return Modification{}, fmt.Errorf("volume %s: describe modification: %w", volumeID, classify(err))
	}
	// EC2 may list past modifications too; the latest started is current.
	var latest *ec2types.VolumeModification
	for i := range out.VolumesModifications {
		m := &out.VolumesModifications[i]
		if aws.ToString(m.VolumeId) != volumeID {
			continue
		}
		if latest == nil || aws.ToTime(m.StartTime).After(aws.ToTime(latest.StartTime)) {
			latest = m
		}
	}
	if latest == nil {
		return Modification{}, fmt.Errorf("volume %s: %w", volumeID, ErrNoModification)
	}
	return Modification{
		State:           ModificationState(latest.ModificationState),
		Progress:        aws.ToInt64(latest.Progress),
		Start:           aws.ToTime(latest.StartTime),
		OriginalSizeGiB: aws.ToInt32(latest.OriginalSize),
		TargetSizeGiB:   aws.ToInt32(latest.TargetSize),
	}, nil
}
