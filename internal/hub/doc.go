// Package hub is the federation's central service: it embeds a NATS
// server that nodes connect out to, enrols nodes, keeps the public
// catalogue of what every node holds, fans researchers' federated
// searches out to the nodes with a deadline and merges their answers,
// audits every search, and serves the API and the web pages.
//
// The package has three parts. The core is Hub (hub.go, link.go,
// search.go, login.go, audit.go, http.go, catalogue.go) with the facade
// callers use (admin.go): Hub's methods for users, tokens and nodes, each
// audited, and Admin for the CLI's commands that work on the database
// alone. The store (store*.go) is the relational state, reached only
// through them. The web pages (web*.go, templates in ui/) are one file
// per page; the search page builds its query with internal/lens's
// builders and runs it with Hub.Search, as the API runs the queries it
// parses.
package hub
