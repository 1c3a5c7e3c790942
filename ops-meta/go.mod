module github.com/kestrel-mon/kestrel/ops-meta

go 1.26.0

require github.com/kestrel-mon/kestrel/proto v0.0.0

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/go-sql-driver/mysql v1.10.1 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)

replace github.com/kestrel-mon/kestrel/proto => ../proto
