// Command hello is a tiny HTTP service the tests install on nodes: it
// answers with a fixed line, or serves a directory.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", ":9000", "address to listen on")
	say := flag.String("say", "hello", "what to answer")
	dir := flag.String("dir", "", "serve this directory instead")
	flag.Parse()
	if *dir != "" {
		log.Fatal(http.ListenAndServe(*listen, http.FileServer(http.Dir(*dir))))
	}
	log.Fatal(http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, *say)
	})))
}
