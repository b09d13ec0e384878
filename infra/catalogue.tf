# The catalogue pipeline's Dataflow workers (infra/catalogue, make classify RUNNER=dataflow): their
# own identity, allowed exactly what a run needs. Read the posters (input bucket) and the model
# versions (this stack's models bucket); write results and Dataflow's temporary and staged files
# (output bucket; Beam's file sinks write temporary objects, then copy and delete them, hence
# objectUser there and nothing broader); and be a Dataflow worker (roles/dataflow.worker, the
# project-level role every worker account needs). The person who submits a job additionally
# needs roles/dataflow.developer and roles/iam.serviceAccountUser on this account (not granted here).
# Nothing here exists unless a catalogue bucket is set (make deploy CATALOGUE_INPUT_BUCKET=...
# CATALOGUE_OUTPUT_BUCKET=...): a deployment that never runs the pipeline gets no Dataflow API,
# account or project role. Input and output grants each follow their own bucket.
locals {
  catalogue = var.catalogue_input_bucket != "" || var.catalogue_output_bucket != "" ? 1 : 0
}

resource "google_project_service" "dataflow" {
  count              = local.catalogue
  service            = "dataflow.googleapis.com"
  disable_on_destroy = false
}

resource "google_service_account" "catalogue_worker" {
  count        = local.catalogue
  account_id   = "${local.account_stem}-cat"
  display_name = "postergenre catalogue pipeline workers (Dataflow)"
  depends_on   = [google_project_service.apis, google_project_service.dataflow]
}

resource "google_project_iam_member" "catalogue_worker" {
  count   = local.catalogue
  project = var.project
  role    = "roles/dataflow.worker"
  member  = "serviceAccount:${google_service_account.catalogue_worker[0].email}"
}

resource "google_storage_bucket_iam_member" "catalogue_reads_models" {
  count  = local.catalogue
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.catalogue_worker[0].email}"
}

resource "google_storage_bucket_iam_member" "catalogue_reads_input" {
  count  = var.catalogue_input_bucket == "" ? 0 : 1
  bucket = var.catalogue_input_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.catalogue_worker[0].email}"
}

resource "google_storage_bucket_iam_member" "catalogue_writes_output" {
  count  = var.catalogue_output_bucket == "" ? 0 : 1
  bucket = var.catalogue_output_bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.catalogue_worker[0].email}"
}

# Deployments made before the count keep the worker account and its grants (a destroy and create
# of one IAM binding could run in either order and leave it removed). The API needs no move:
# its old entry is dropped without disabling anything (disable_on_destroy = false).
moved {
  from = google_service_account.catalogue_worker
  to   = google_service_account.catalogue_worker[0]
}

moved {
  from = google_project_iam_member.catalogue_worker
  to   = google_project_iam_member.catalogue_worker[0]
}

moved {
  from = google_storage_bucket_iam_member.catalogue_reads_models
  to   = google_storage_bucket_iam_member.catalogue_reads_models[0]
}

output "catalogue_worker_email" {
  value       = one(google_service_account.catalogue_worker[*].email)
  description = "SERVICE_ACCOUNT for make classify RUNNER=dataflow (null without catalogue buckets)."
}
