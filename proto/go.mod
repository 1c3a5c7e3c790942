module github.com/kestrel-mon/kestrel/proto

go 1.26.0
