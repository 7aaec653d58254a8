module github.com/embedrank/embedrank/clients/go

go 1.24
