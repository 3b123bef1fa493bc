"""HTTP plumbing shared by the HTTP-triggered functions: auth, bodies, problems, responses."""
