module github.com/kestrel-mon/kestrel/ops-updater

go 1.26.0

require (
	github.com/kestrel-mon/kestrel/lib v0.0.0
	github.com/kestrel-mon/kestrel/proto v0.0.0
)

require go.yaml.in/yaml/v3 v3.0.6 // indirect

replace (
	github.com/kestrel-mon/kestrel/lib => ../lib
	github.com/kestrel-mon/kestrel/proto => ../proto
)
