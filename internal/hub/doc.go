// Package hub is the federation's central service: it embeds a NATS
// server that nodes connect out to, enrols nodes, keeps the public
// catalogue of what every node holds, fans researchers' federated
// searches out to the nodes with a deadline and merges their answers,
// audits every search, and serves the API and the web pages.
package hub
