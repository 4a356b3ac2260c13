# Every command answers --help with exit 0; usage errors exit 2.

$ kiln --help
kiln: versioned data, tracked training, a model registry and serving in one binary
Usage: kiln [OPTIONS] SUBCOMMAND
...

$ kiln --version
kiln 0.1.0 (glob)

$ kiln version
kiln 0.1.0 (glob)

$ kiln version --json
{
  "version": "*" (glob)
}

$ for c in init server version "experiments" "experiments list" "experiments show" \
>   "experiments create" "experiments delete" "experiments restore" "experiments rename" \
>   "runs" "runs list" "runs search" "runs show" "runs compare" "runs delete" "runs restore" \
>   "runs create" "runs log" "runs end" "models" "models list" "models show" "models versions" \
>   "data" "data commit" "data log" "data show" "data diff" "data checkout" "data export" \
>   "data branch" "data tag" "data merge" "data revert" "data validate" "data rules" "data gc" \
>   fsck; do
>   kiln $c --help > help.out || echo "kiln $c --help failed"
>   grep -q "^Usage: kiln $c" help.out || echo "kiln $c --help printed no usage"
> done

$ kiln
kiln: 'kiln' needs a command: init, server, version, experiments, runs, models, data, fsck
Run with --help for more information.
[exit 2]

$ kiln frobnicate
kiln: unknown command 'frobnicate'
Run with --help for more information.
[exit 2]

$ kiln experiments frobnicate
kiln: unknown command 'frobnicate' for 'experiments'
Run with --help for more information.
[exit 2]

$ kiln experiments
kiln: 'kiln experiments' needs a command: list, show, create, delete, restore, rename
Run with --help for more information.
[exit 2]

$ kiln runs list --no-such-option
kiln: The following argument was not expected: --no-such-option
Run with --help for more information.
[exit 2]

$ kiln experiments show
kiln: ID_OR_NAME is required
Run with --help for more information.
[exit 2]

$ kiln runs list --view sideways
kiln: --view: sideways not in {active,deleted,all}
Run with --help for more information.
[exit 2]

$ kiln server --port 70000
kiln: --port: Value 70000 not in range 0 to 65535
Run with --help for more information.
[exit 2]
