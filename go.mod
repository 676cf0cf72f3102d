module github.com/parley-chat/parley

go 1.26.8
