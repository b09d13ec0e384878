"""infra/catalogue.tf: the catalogue workers' account may read input and models, write output, be a Dataflow worker; nothing else."""

from __future__ import annotations

from tests.infra.test_infra import resources  # noqa: F401 - the fixture


def test_catalogue_worker_has_only_what_a_run_needs(resources):  # noqa: F811
    mine = {k: v for k, v in resources.items() if "google_service_account.catalogue_worker" in str(v.get("member", ""))}
    assert {(k[1], v["role"]) for k, v in mine.items()} == {
        ("catalogue_worker", "roles/dataflow.worker"),
        ("catalogue_reads_models", "roles/storage.objectViewer"),
        ("catalogue_reads_input", "roles/storage.objectViewer"),
        ("catalogue_writes_output", "roles/storage.objectUser"),
    }
    assert "google_storage_bucket.models" in mine[("google_storage_bucket_iam_member", "catalogue_reads_models")]["bucket"]
    assert "var.catalogue_input_bucket" in mine[("google_storage_bucket_iam_member", "catalogue_reads_input")]["bucket"]
    assert "var.catalogue_output_bucket" in mine[("google_storage_bucket_iam_member", "catalogue_writes_output")]["bucket"]
    assert resources[("google_project_service", "dataflow")]["service"] == "dataflow.googleapis.com"
