# The catalogue pipeline's Dataflow workers (infra/catalogue, make classify RUNNER=dataflow): their
# own identity, allowed exactly what a run needs. Read the posters (input bucket) and the model
# versions (this stack's models bucket); write results and Dataflow's temporary and staged files
# (output bucket; Beam's file sinks write temporary objects, then copy and delete them, hence
# objectUser there and nothing broader); and be a Dataflow worker (roles/dataflow.worker, the
# project-level role every worker account needs). The person who submits a job additionally
# needs roles/dataflow.developer and roles/iam.serviceAccountUser on this account (not granted here).
# Input and output grants are made only when their bucket names are set.

variable "catalogue_input_bucket" {
  type        = string
  default     = ""
  description = "Bucket holding the posters a catalogue run reads (empty: no catalogue grants on input)."
}

variable "catalogue_output_bucket" {
  type        = string
  default     = ""
  description = "Bucket a catalogue run writes its results and Dataflow temp files to (TEMP_LOCATION gs://<it>/tmp/)."
}

resource "google_project_service" "dataflow" {
  service            = "dataflow.googleapis.com"
  disable_on_destroy = false
}

resource "google_service_account" "catalogue_worker" {
  account_id   = "${local.account_stem}-cat"
  display_name = "postergenre catalogue pipeline workers (Dataflow)"
  depends_on   = [google_project_service.apis, google_project_service.dataflow]
}

resource "google_project_iam_member" "catalogue_worker" {
  project = var.project
  role    = "roles/dataflow.worker"
  member  = "serviceAccount:${google_service_account.catalogue_worker.email}"
}

resource "google_storage_bucket_iam_member" "catalogue_reads_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.catalogue_worker.email}"
}

resource "google_storage_bucket_iam_member" "catalogue_reads_input" {
  count  = var.catalogue_input_bucket == "" ? 0 : 1
  bucket = var.catalogue_input_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.catalogue_worker.email}"
}

resource "google_storage_bucket_iam_member" "catalogue_writes_output" {
  count  = var.catalogue_output_bucket == "" ? 0 : 1
  bucket = var.catalogue_output_bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.catalogue_worker.email}"
}

output "catalogue_worker_email" {
  value       = google_service_account.catalogue_worker.email
  description = "SERVICE_ACCOUNT for make classify RUNNER=dataflow."
}
