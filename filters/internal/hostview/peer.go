package hostview

// PeerURISAN is the first URI SAN of the peer's mTLS certificate as Envoy
// reports it (connection.uri_san_peer_certificate), scheme included, e.g.
// "spiffe://cluster.local/ns/qa/sa/tester"; "" for plain text. Principal is
// the same identity without the "spiffe://" scheme, as Istio's authorization
// policies write it; cores whose configuration lists full SPIFFE ids (the
// canary trust list) want this form.
func (r *Request) PeerURISAN() string {
	san, _ := r.Property("connection.uri_san_peer_certificate")
	return san
}
