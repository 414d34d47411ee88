#!/usr/bin/env bash
# The test command (README, `make test`, .ci/run): static checks, then the whole pytest suite
# against a real local kube-apiserver + etcd (started by the test session, stopped afterwards).
# Extra arguments go to pytest, e.g. `hack/test.sh -k sandbox`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/bootstrap.sh
hack/lint.sh
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: for this suite that is a failure, not a pass.
if [[ $rc -eq 5 ]]; then echo "test: no tests were collected" >&2; exit 1; fi
exit $rc
