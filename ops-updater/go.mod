module github.com/kestrel-mon/kestrel/ops-updater

go 1.26.0

require github.com/kestrel-mon/kestrel/proto v0.0.0

require go.yaml.in/yaml/v3 v3.0.6

replace github.com/kestrel-mon/kestrel/proto => ../proto
