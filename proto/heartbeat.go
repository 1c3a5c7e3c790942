package proto

// Open-Falcon's ops-updater ↔ ops-meta heartbeat (POST /heartbeat), with
// Kestrel's extra fields. Every extra field is omitted when empty, so a
// stock Open-Falcon updater or ops-meta sees exactly its own protocol.

// HeartbeatRequest is what an updater posts.
type HeartbeatRequest struct {
	Hostname   string      `json:"hostname"`
	RealAgents []RealAgent `json:"realAgents"`
}

// RealAgent is one agent installed on the host.
type RealAgent struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Status    string `json:"status"` // "started", "stoped" (sic) or "stopped"
	Timestamp int64  `json:"timestamp"`
	// Kestrel: why the last install or health check failed.
	Error string `json:"error,omitempty"`
	// Kestrel: a version being installed right now.
	Pending string `json:"pending,omitempty"`
}

// HeartbeatResponse is ops-meta's answer. DesiredAgents is never null.
type HeartbeatResponse struct {
	ErrorMessage  string         `json:"errorMessage"`
	DesiredAgents []DesiredAgent `json:"desiredAgents"`
}

// DesiredAgent is the state ops-meta wants for one agent on the host.
// Tarball and Md5 are base URLs: the files are <Tarball>/<name>-<version>.tar.gz
// and <Md5 or Tarball>/<name>-<version>.tar.gz.md5.
type DesiredAgent struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Tarball string `json:"tarball"`
	Md5     string `json:"md5"`
	Cmd     string `json:"cmd"` // "start" or "stop"
	// Kestrel extras.
	Sha256    string       `json:"sha256,omitempty"`
	Signature string       `json:"signature,omitempty"` // base64 ed25519 over ArtifactMessage
	Wave      int          `json:"wave,omitempty"`      // rollout wave of this host, from 1
	Health    *HealthCheck `json:"health,omitempty"`
}

// HealthCheck is what the updater must see before keeping a new version.
type HealthCheck struct {
	HTTP    string `json:"http"`    // URL that must answer 200
	Timeout int    `json:"timeout"` // seconds
}

// Agent statuses as printed by "control status".
const (
	AgentStarted = "started"
	AgentStoped  = "stoped" // Open-Falcon's spelling
	AgentStopped = "stopped"
)

// ArtifactMessage returns the message an artifact signature covers:
// "kestrel-artifact-v1\n<name>\n<version>\n<sha256 hex>\n", so a signature
// binds the content to one name and version.
func ArtifactMessage(name, version, sha256Hex string) []byte {
	return []byte("kestrel-artifact-v1\n" + name + "\n" + version + "\n" + sha256Hex + "\n")
}
