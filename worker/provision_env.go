package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kfleet/kfleet/activities"
)

// provisioningFromEnv reads how this deployment launches hosts:
// KFLEET_HOST_IMAGE (the brokers' AMI) and KFLEET_ZOOKEEPER_IMAGE (the
// ensemble's; default the brokers'), KFLEET_HOST_SUBNETS
// (zone=subnet,...), KFLEET_HOST_SECURITY_GROUPS (sg-...,...),
// KFLEET_HOST_INSTANCE_PROFILE (the SSM agent's role) and
// KFLEET_BROKER_METRICS_URL (a template: {host}, {cluster}, {broker}).
func provisioningFromEnv() (activities.ProvisionConfig, error) {
	c := activities.ProvisionConfig{
		ImageID:          os.Getenv("KFLEET_HOST_IMAGE"),
		ZooKeeperImageID: os.Getenv("KFLEET_ZOOKEEPER_IMAGE"),
		InstanceProfile:  os.Getenv("KFLEET_HOST_INSTANCE_PROFILE"),
		MetricsURL:       os.Getenv("KFLEET_BROKER_METRICS_URL"),
	}
	if v := os.Getenv("KFLEET_HOST_SECURITY_GROUPS"); v != "" {
		c.SecurityGroupIDs = strings.Split(v, ",")
	}
	if v := os.Getenv("KFLEET_HOST_SUBNETS"); v != "" {
		c.SubnetIDs = map[string]string{}
		for _, pair := range strings.Split(v, ",") {
			zone, subnet, ok := strings.Cut(pair, "=")
			if !ok || zone == "" || subnet == "" {
				return c, fmt.Errorf("KFLEET_HOST_SUBNETS=%q: want zone=subnet pairs, e.g. us-east-1a=subnet-0abc,us-east-1b=subnet-0def", v)
			}
			c.SubnetIDs[zone] = subnet
		}
	}
	return c, nil
}

// ec2WaitDelays reads KFLEET_EC2_WAIT_DELAYS, "min,max" (e.g. 100ms,1s):
// how often EC2 waiters describe what they wait for. Unset: AWS's 15 s
// and 120 s.
func ec2WaitDelays() (minDelay, maxDelay time.Duration, err error) {
	v := os.Getenv("KFLEET_EC2_WAIT_DELAYS")
	if v == "" {
		return 0, 0, nil
	}
	lo, hi, ok := strings.Cut(v, ",")
	if ok {
		minDelay, err = time.ParseDuration(lo)
		if err == nil {
			maxDelay, err = time.ParseDuration(hi)
		}
	}
	if !ok || err != nil || minDelay <= 0 || maxDelay < minDelay {
		return 0, 0, fmt.Errorf("KFLEET_EC2_WAIT_DELAYS=%q: want min,max durations such as 100ms,1s", v)
	}
	return minDelay, maxDelay, nil
}
