"""The kernel below every app: tenancy and the actor, errors, the API and page bases, crypto,
the egress policy, local roots and environment parsing. It imports no app (`clients`,
`backups`, `lifecycle`) and not the composition root (`agencyops`); what it needs from an app
(how a user becomes an actor, what a procurement token's use records) is wired in settings or
through a signal."""
