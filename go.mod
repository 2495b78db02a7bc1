module github.com/trek-go/audit

go 1.26

require (
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/stretchr/testify v1.12.1
	gopkg.in/natefinch/lumberjack.v2 v2.2.1
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
