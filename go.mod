module github.com/pingora-go/pingora

go 1.26
