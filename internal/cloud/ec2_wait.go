package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Waiters: AWS's own (aws-sdk-go-v2's InstanceRunning, InstanceStopped,
// InstanceTerminated, VolumeAvailable, VolumeInUse, VolumeDeleted) where
// AWS has one, and a poll of our own for a volume's attachment, which AWS
// has no waiter for (VolumeInUse passes while the volume is still
// attaching, before the host sees a device). Each waits at most maxWait
// and ends with ctx; a resource that ends up in a state the wait cannot
// succeed from (a launch terminated, a volume deleted) is
// ErrIncorrectState naming that state, a wait that runs out is
// ErrWaitTimeout.

// WaitInstanceRunning waits until the instance runs and returns it (with
// its private address).
func (e *EC2) WaitInstanceRunning(ctx context.Context, instanceID string, maxWait time.Duration) (Instance, error) {
	w := ec2.NewInstanceRunningWaiter(e.client, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = e.waitMin, e.waitMax
	})
	_, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}}, maxWait)
	return e.afterInstanceWait(ctx, instanceID, "running", err)
}

// WaitInstanceStopped waits until the instance is stopped.
func (e *EC2) WaitInstanceStopped(ctx context.Context, instanceID string, maxWait time.Duration) (Instance, error) {
	w := ec2.NewInstanceStoppedWaiter(e.client, func(o *ec2.InstanceStoppedWaiterOptions) {
		o.MinDelay, o.MaxDelay = e.waitMin, e.waitMax
	})
	_, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}}, maxWait)
	return e.afterInstanceWait(ctx, instanceID, "stopped", err)
}

// WaitInstanceTerminated waits until the instance is terminated (its
// volumes detached).
func (e *EC2) WaitInstanceTerminated(ctx context.Context, instanceID string, maxWait time.Duration) (Instance, error) {
	w := ec2.NewInstanceTerminatedWaiter(e.client, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = e.waitMin, e.waitMax
	})
	_, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}}, maxWait)
	return e.afterInstanceWait(ctx, instanceID, "terminated", err)
}

// afterInstanceWait describes the instance after a waiter and says why it
// failed, if it did.
func (e *EC2) afterInstanceWait(ctx context.Context, instanceID, want string, waitErr error) (Instance, error) {
	if err := ctx.Err(); err != nil {
		return Instance{}, fmt.Errorf("instance %s: wait until %s: %w", instanceID, want, err)
	}
	inst, err := e.DescribeInstance(ctx, instanceID)
	switch {
	case waitErr == nil && err == nil:
		return inst, nil
	case err != nil:
		return Instance{}, fmt.Errorf("instance %s: wait until %s: %w", instanceID, want, err)
	}
	return inst, fmt.Errorf("instance %s: wait until %s: it is %s: %w", instanceID, want, inst.State, waitFailure(waitErr))
}

// waitFailure maps an aws-sdk-go-v2 waiter's error: its failure state and
// its timeout have no types, only messages.
func waitFailure(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "exceeded max wait time"):
		return fmt.Errorf("%w: %w", ErrWaitTimeout, err)
	case strings.Contains(msg, "waiter state transitioned to Failure"):
		return fmt.Errorf("%w: %w", ErrIncorrectState, err)
	}
	return classify(err)
}

// WaitVolumeAvailable waits until a volume is available: created, or
// detached.
func (e *EC2) WaitVolumeAvailable(ctx context.Context, volumeID string, maxWait time.Duration) (Volume, error) {
	w := ec2.NewVolumeAvailableWaiter(e.client, func(o *ec2.VolumeAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = e.waitMin, e.waitMax
	})
	_, err := w.WaitForOutput(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}}, maxWait)
	return e.afterVolumeWait(ctx, volumeID, "available", err)
}

// WaitVolumeInUse waits until a volume is in use. It may still be
// attaching: a host needs WaitVolumeAttached.
func (e *EC2) WaitVolumeInUse(ctx context.Context, volumeID string, maxWait time.Duration) (Volume, error) {
	w := ec2.NewVolumeInUseWaiter(e.client, func(o *ec2.VolumeInUseWaiterOptions) {
		o.MinDelay, o.MaxDelay = e.waitMin, e.waitMax
	})
	_, err := w.WaitForOutput(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}}, maxWait)
	return e.afterVolumeWait(ctx, volumeID, "in-use", err)
}

// WaitVolumeDeleted waits until a volume is gone.
func (e *EC2) WaitVolumeDeleted(ctx context.Context, volumeID string, maxWait time.Duration) error {
	w := ec2.NewVolumeDeletedWaiter(e.client, func(o *ec2.VolumeDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = e.waitMin, e.waitMax
	})
	if err := w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}}, maxWait); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("volume %s: wait until deleted: %w", volumeID, ctxErr)
		}
		return fmt.Errorf("volume %s: wait until deleted: %w", volumeID, waitFailure(err))
	}
	return nil
}

func (e *EC2) afterVolumeWait(ctx context.Context, volumeID, want string, waitErr error) (Volume, error) {
	if err := ctx.Err(); err != nil {
		return Volume{}, fmt.Errorf("volume %s: wait until %s: %w", volumeID, want, err)
	}
	v, err := e.DescribeVolume(ctx, volumeID)
	switch {
	case waitErr == nil && err == nil:
		return v, nil
	case err != nil:
		return Volume{}, fmt.Errorf("volume %s: wait until %s: %w", volumeID, want, err)
	}
	return v, fmt.Errorf("volume %s: wait until %s: it is %s: %w", volumeID, want, v.State, waitFailure(waitErr))
}

// WaitVolumeAttached waits until a volume's attachment to instanceID is
// attached: the host has the device. A volume detached meanwhile, or
// attached elsewhere, is ErrIncorrectState.
func (e *EC2) WaitVolumeAttached(ctx context.Context, volumeID, instanceID string, maxWait time.Duration) (Volume, error) {
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	delay := e.waitMin
	for {
		v, err := e.DescribeVolume(ctx, volumeID)
		switch {
		case err != nil:
			return Volume{}, fmt.Errorf("volume %s: wait until attached to instance %s: %w", volumeID, instanceID, timeoutOr(err))
		case v.InstanceID == instanceID && v.AttachState == "attached":
			return v, nil
		case v.InstanceID != instanceID || v.AttachState != "attaching":
			return v, fmt.Errorf("volume %s: wait until attached to instance %s: it is %s%s: %w",
				volumeID, instanceID, v.State, attachedTo(v), ErrIncorrectState)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("volume %s: wait until attached to instance %s: still %s: %w", volumeID, instanceID, v.AttachState, timeoutOr(ctx.Err()))
		case <-t.C:
		}
		delay = min(delay*2, e.waitMax)
	}
}

func attachedTo(v Volume) string {
	if v.InstanceID == "" {
		return ""
	}
	return fmt.Sprintf(" (%s to %s)", v.AttachState, v.InstanceID)
}

// timeoutOr marks a deadline that ran out as ErrWaitTimeout.
func timeoutOr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrWaitTimeout, err)
	}
	return err
}
