package membership

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Membership change reasons (label values of Metrics.MembershipChanges).
// Timeout, NoResponders and Suspect are local: this process saw the
// judge fail and publishes an evict message; Leave and Evicted come from
// a message.
const (
	ChangeJoin         = "join"
	ChangeLeave        = "leave"
	ChangeTimeout      = "timeout"
	ChangeNoResponders = "no_responders"
	ChangeSuspect      = "suspect"
	ChangeEvicted      = "evicted" // an evict message from another observer
)

// Reasons a member message is ignored (label values of
// Metrics.MemberMsgsDropped).
const (
	DropBadMsg   = "bad_member_msg"   // does not decode
	DropStaleMsg = "stale_member_msg" // from (or about) an incarnation that does not replace the known one
	// DropDuplicateNode: a beat of another incarnation while the known
	// one beats too: two processes under one node id (logged at Error).
	DropDuplicateNode = "duplicate_node"
	// DropSlowConsumer: member messages the NATS client dropped because
	// the subscription's pending queue was full (the membership warms up
	// again: an evict or a leave may be among them).
	DropSlowConsumer = "slow_consumer"
)

// Results of publishing an evict message (label values of
// Metrics.EvictsPublished).
const (
	PublishOK    = "ok"
	PublishError = "error"
)

// Metrics are the membership's metrics, named <prefix>_... so each binary
// keeps its own names (kestrel_transfer_ring_members,
// kestrel_judge_ring_members).
type Metrics struct {
	// MemberMsgsDropped: <prefix>_member_messages_dropped_total{reason}.
	MemberMsgsDropped *prometheus.CounterVec
	// RingMembers: <prefix>_ring_members.
	RingMembers prometheus.Gauge
	// MembershipChanges: <prefix>_membership_changes_total{reason}.
	MembershipChanges *prometheus.CounterVec
	// RingConfig: <prefix>_ring_config{partition_count,replication_factor,load}, 1.
	RingConfig *prometheus.GaugeVec
	// EvictsPublished: <prefix>_member_evicts_published_total{result}.
	EvictsPublished *prometheus.CounterVec
}

// NewMetrics returns the membership metrics named <prefix>_..., e.g.
// prefix "kestrel_transfer", registered on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer, prefix string) *Metrics {
	m := &Metrics{
		MemberMsgsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_member_messages_dropped_total",
			Help: "Membership messages ignored, by reason."}, []string{"reason"}),
		RingMembers: prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "_ring_members", Help: "Judges in the ring."}),
		MembershipChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_membership_changes_total",
			Help: "Judges joining or leaving the ring, by reason."}, []string{"reason"}),
		RingConfig: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: prefix + "_ring_config",
			Help: "1 for the consistent hash ring parameters in use; they must be identical on every transfer and judge."},
			[]string{"partition_count", "replication_factor", "load"}),
		EvictsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_member_evicts_published_total",
			Help: "Evict messages published after this process took a judge out of the ring for a local reason (timeout, no_responders, suspect), by result."},
			[]string{"result"}),
	}
	for _, l := range []string{ChangeJoin, ChangeLeave, ChangeTimeout, ChangeNoResponders, ChangeSuspect, ChangeEvicted} {
		m.MembershipChanges.WithLabelValues(l)
	}
	for _, l := range []string{DropBadMsg, DropStaleMsg, DropDuplicateNode, DropSlowConsumer} {
		m.MemberMsgsDropped.WithLabelValues(l)
	}
	for _, l := range []string{PublishOK, PublishError} {
		m.EvictsPublished.WithLabelValues(l)
	}
	if reg != nil {
		reg.MustRegister(m.MemberMsgsDropped, m.RingMembers, m.MembershipChanges, m.RingConfig, m.EvictsPublished)
	}
	return m
}

// setRingConfig exports the ring parameters in use (one series, value 1).
func (m *Metrics) setRingConfig(partitionCount, replicationFactor int, load float64) {
	m.RingConfig.Reset()
	m.RingConfig.WithLabelValues(strconv.Itoa(partitionCount), strconv.Itoa(replicationFactor), strconv.FormatFloat(load, 'g', -1, 64)).Set(1)
}
