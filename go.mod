module github.com/fruitfulplanet/drguard

go 1.26.0

require github.com/prometheus/common v0.73.1

require (
	github.com/prometheus/client_model v0.6.3 // indirect
	go.etcd.io/bbolt v1.4.3 // indirect
	golang.org/x/sys v0.49.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
