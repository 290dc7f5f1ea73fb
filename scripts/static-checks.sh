#!/bin/sh
# The test command's first step: the type check and the lint side by side (one core each; one after
# the other they took ~1 min of `npm test`'s time on the 2-core CI machine). Fails if either fails,
# after both have finished, so both reports are printed.
npm run --silent typecheck &
typecheck=$!
npm run --silent lint &
lint=$!
status=0
wait "$typecheck" || status=1
wait "$lint" || status=1
[ "$status" -eq 0 ] || echo "static checks failed (see the typecheck and lint output above)" >&2
exit "$status"
