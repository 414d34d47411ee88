"""The Aura sandbox: simulated Hetzner Cloud, Tailscale and Stripe APIs over one world.

Start it with `aura sandbox` (see `cli`), in-process with `harness.Sandbox`, or as a
subprocess with `harness.SandboxProcess`. Layout: `config` (settings), `world` and `model`
(the simulated state), `lifecycle` (state machines), `hetzner*` (the `/v1` API), `faults` and
`http_faults` (fault injection), `admin` (`/admin`), `gateway` (per-server agent gateways),
`app` (assembly and `API_MODULES`).
"""
