package kraft

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func registered(t *testing.T, versions map[int32]string) *Model {
	t.Helper()
	m := New(testTiming, []int32{3000, 3001, 3002}, 21, t0)
	for id := int32(1); id <= int32(len(versions)); id++ {
		r, ok := SupportedBy(versions[id])
		if !ok {
			t.Fatalf("SupportedBy(%q) not modelled", versions[id])
		}
		if _, err := m.Register(id, versions[id], r, t0); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestBrokerFencing(t *testing.T) {
	tests := []struct {
		name        string
		act         func(m *Model, now time.Time)
		until       time.Duration
		wantFenced  bool
		wantUnclean bool
	}{
		{name: "heartbeating broker is unfenced", act: func(*Model, time.Time) {}, until: 20 * time.Second},
		{name: "crash: fenced after the session timeout, unclean", act: func(m *Model, _ time.Time) { m.StopHeartbeats(2) },
			until: 14 * time.Second, wantFenced: true, wantUnclean: true},
		{name: "crash: not fenced before the session timeout", act: func(m *Model, _ time.Time) { m.StopHeartbeats(2) },
			until: 10900 * time.Millisecond},
		{name: "controlled shutdown: fenced cleanly", act: func(m *Model, now time.Time) {
			_, _ = m.WantShutdown(2, now)
			_, _ = m.Fence(2, now)
		}, until: 6 * time.Second, wantFenced: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := registered(t, map[int32]string{1: "3.9.0", 2: "3.9.0", 3: "3.9.0"})
			evs := run(m, 0, 3*time.Second)
			if n := len(kinds(evs, EventUnfenced)); n != 3 {
				t.Fatalf("%d brokers unfenced, want 3: %v", n, evs)
			}
			// The last heartbeat was at 2s; a crash at 3s is fenced at 11s.
			tc.act(m, at(3*time.Second))
			evs = run(m, 3100*time.Millisecond, tc.until)
			b, _ := m.Broker(2)
			if b.Fenced != tc.wantFenced {
				t.Fatalf("broker 2 fenced %v, want %v; events %v", b.Fenced, tc.wantFenced, evs)
			}
			if f := kinds(evs, EventFenced); tc.wantUnclean && (len(f) != 1 || !f[0].Unclean) {
				t.Fatalf("fenced events %v, want one unclean", f)
			}
		})
	}
}

func TestNoFencingWithoutLeader(t *testing.T) {
	m := registered(t, map[int32]string{1: "3.9.0"})
	run(m, 0, 3*time.Second)
	m.StopHeartbeats(1)
	for _, id := range []int32{3000, 3001} {
		if _, err := m.StopVoter(id, false, at(3*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	run(m, 3100*time.Millisecond, 20*time.Second)
	if b, _ := m.Broker(1); b.Fenced {
		t.Fatal("broker fenced with no active controller")
	}
	if _, err := m.Register(2, "3.9.0", Range{7, 21}, at(20*time.Second)); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Register without a leader = %v, want ErrNoLeader", err)
	}
}

func TestUpdateMetadataVersion(t *testing.T) {
	tests := []struct {
		name    string
		ghost   bool // broker 3 runs 3.8 and is gone but registered
		unreg   bool // ... then unregistered
		update  Update
		wantErr string
		wantMV  int16
	}{
		{name: "upgrade to 4.0 with a 3.9 broker", update: Update{Level: 25}, wantErr: "broker 1 (registered, Kafka 3.9.0) does not support metadata.version 4.0-IV3", wantMV: 21},
		{name: "no change", update: Update{Level: 21}, wantMV: 21},
		{name: "downgrade refused", update: Update{Level: 20}, wantErr: "downgrades are not allowed", wantMV: 21},
		{name: "downgrade allowed", update: Update{Level: 20, AllowDowngrade: true}, wantMV: 20},
		{name: "validate only", update: Update{Level: 20, AllowDowngrade: true, ValidateOnly: true}, wantMV: 21},
		{name: "ghost 3.8 broker refuses 3.9", ghost: true, update: Update{Level: 21}, wantErr: "broker 3 (registered but not running, Kafka 3.8.1)", wantMV: 20},
		{name: "unregistered ghost", ghost: true, unreg: true, update: Update{Level: 21}, wantMV: 21},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			versions := map[int32]string{1: "3.9.0", 2: "3.9.0"}
			if tc.ghost {
				versions[3] = "3.8.1"
			}
			m := registered(t, versions)
			if tc.ghost {
				// The cluster was at 3.8 when broker 3 left for good.
				m.features.MetadataVersion = 20
				m.StopHeartbeats(3)
			}
			run(m, 0, 12*time.Second)
			if tc.unreg {
				if _, err := m.Unregister(3, at(12*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := m.UpdateMetadataVersion(tc.update, at(13*time.Second))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("update: %v", err)
			case tc.wantErr != "" && (!errors.Is(err, ErrInvalidUpdate) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("update: %v, want ErrInvalidUpdate with %q", err, tc.wantErr)
			}
			if got := m.Features().MetadataVersion; got != tc.wantMV {
				t.Fatalf("metadata.version %d, want %d", got, tc.wantMV)
			}
		})
	}
}

func TestMetadataVersionTable(t *testing.T) {
	tests := []struct {
		kafka string
		max   string
		level int16
	}{{"3.7.2", "3.7-IV4", 19}, {"3.8.0", "3.8-IV0", 20}, {"3.9.1", "3.9-IV0", 21}, {"4.0.0", "4.0-IV3", 25}}
	for _, tc := range tests {
		r, ok := SupportedBy(tc.kafka)
		if !ok || r.Max != tc.level || MetadataVersionName(r.Max) != tc.max {
			t.Errorf("SupportedBy(%s) = %v %v, want max %s (%d)", tc.kafka, r, ok, tc.max, tc.level)
		}
	}
	if _, ok := SupportedBy("2.8.2"); ok {
		t.Error("SupportedBy(2.8.2): a ZooKeeper-only release is modelled")
	}
}

func TestUnregisterRunningBroker(t *testing.T) {
	m := registered(t, map[int32]string{1: "3.9.0"})
	run(m, 0, 3*time.Second)
	ev, err := m.Unregister(1, at(3*time.Second))
	if err != nil || !strings.Contains(ev.Detail, "registers again") {
		t.Fatalf("Unregister = %+v, %v", ev, err)
	}
	if _, err := m.Unregister(1, at(3*time.Second)); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("second Unregister = %v, want ErrNotRegistered", err)
	}
}
