package integration_test

import (
	"encoding/json"

	"github.com/kfleet/kfleet/workflows"
)

// Operation requests as the CLI sends them.

func restartReq(by string, brokers ...int32) workflows.Request {
	return workflows.Request{Kind: workflows.OpRollingRestart, RequestedBy: by, Brokers: brokers}
}

func batchedRestartReq(by string, maxBatch int) workflows.Request {
	req := restartReq(by)
	req.Params, _ = json.Marshal(workflows.RestartParams{MaxBatch: maxBatch})
	return req
}

func upgradeReq(by, version, fromIBP string) workflows.Request {
	params, _ := json.Marshal(workflows.UpgradeParams{Version: version, FromIBP: fromIBP})
	return workflows.Request{Kind: workflows.OpRollingUpgrade, RequestedBy: by, Params: params}
}

func expandReq(by string, broker int32) workflows.Request {
	return workflows.Request{Kind: workflows.OpVolumeExpansion, RequestedBy: by, Brokers: []int32{broker}}
}
