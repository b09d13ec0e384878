"""``python -m infra.catalogue --input ... --output ...``: run the catalogue pipeline, print a summary.

Exit status: 0 when every matched file got exactly one line (errors included), 1 when the run
failed or lost records, 2 for a bad command line or a model that cannot be loaded.
"""

from __future__ import annotations

import json
import logging
import sys
import time


def _by_value() -> None:
    """Pickle this package's code into the pipeline: workers need ``postergenre`` and the serving
    dependencies installed (staged for Dataflow), not this repository's ``infra`` folder."""
    from apache_beam.internal.cloudpickle import cloudpickle

    import infra.catalogue

    cloudpickle.register_pickle_by_value(infra.catalogue)


def counters(result) -> dict[str, int]:
    """The pipeline's postergenre counters, summed over steps (committed where the runner has them)."""
    from apache_beam.metrics.metric import MetricsFilter

    from infra.catalogue.pipeline import NAMESPACE

    totals: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(value or 0)
    return totals


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    from infra.catalogue import options as opts

    args, extra = opts.parser().parse_known_args(argv)
    flags = opts.beam_flags(args, extra)

    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from infra.catalogue.pipeline import ERRORS, PREDICTIONS, Plan, build, pattern_of
    from postergenre.artifact import Manifest, verify
    from postergenre.config import Settings
    from postergenre.errors import ModelUnavailable
    from postergenre.model import read_artifact

    options = PipelineOptions(flags)
    pattern = pattern_of(args.input)
    if args.dry_run:
        shown = {
            "input": pattern,
            "output": args.output,
            "model_uri": args.model_uri,
            "options": options.get_all_options(drop_default=True),
        }
        print(json.dumps(shown, indent=2, sort_keys=True, default=str))
        return 0
    settings = Settings.from_env()
    try:  # the launcher checks the artifact too: a wrong MODEL_URI fails here, before any worker starts
        manifest_data, model_bytes = read_artifact(args.model_uri, settings.storage_deadline_s)
        manifest = Manifest.from_dict(manifest_data)
        verify(manifest, model_bytes)
    except ModelUnavailable as exc:
        print(f"model {args.model_uri}: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    del model_bytes
    _by_value()
    plan = Plan(
        pattern, args.output, args.model_uri, manifest.describe(), manifest.labels, settings, args.csv, args.max_batch_size, args.num_shards
    )
    pipeline = beam.Pipeline(options=options)
    build(pipeline, plan)
    result = pipeline.run()
    state = result.wait_until_finish()
    seconds = time.perf_counter() - started
    totals = counters(result)
    matched, classified, failed = totals.get("matched", 0), totals.get("classified", 0), totals.get("failed", 0)
    by_code = {name.removeprefix("error."): n for name, n in sorted(totals.items()) if name.startswith("error.") and n}
    ok = str(state) in ("DONE", "PipelineState.DONE") and matched == classified + failed
    summary = {
        "state": str(state),
        "input": pattern,
        "model": manifest.describe(),
        "files": matched,
        "classified": classified,
        "failed": failed,
        "errors": by_code,
        "seconds": round(seconds, 3),
        "files_per_second": round(matched / seconds, 2) if seconds else None,
        "predictions": FileSystems.join(args.output, f"{PREDICTIONS}-*.jsonl"),
        "dead_letter": FileSystems.join(args.output, f"{ERRORS}-*.jsonl"),
        "complete": ok,
    }
    with FileSystems.create(FileSystems.join(args.output, "summary.json")) as f:
        f.write((json.dumps(summary, indent=2) + "\n").encode())
    codes = ", ".join(f"{code} {n}" for code, n in by_code.items())
    print(
        f"{matched} files: {classified} classified, {failed} failed{f' ({codes})' if codes else ''}; "
        f"{seconds:.1f} s, start-up included ({summary['files_per_second']} files/s); model {manifest.version}; state {state}"
    )
    print(f"predictions: {summary['predictions']}\ndead letter: {summary['dead_letter']}")
    if not ok:
        print(
            "INCOMPLETE: not every matched file has exactly one line" if matched != classified + failed else "the pipeline did not finish",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
