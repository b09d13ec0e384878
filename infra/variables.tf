variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region for the bucket and the function."
  type        = string
  default     = "europe-west1"
}

variable "bucket" {
  description = "Name of the model bucket (created here; make publish uploads into it)."
  type        = string
}

variable "function_name" {
  description = "Cloud Function (gen2) name."
  type        = string
  default     = "postergenre"
}

variable "prefix" {
  description = "Object prefix of published model versions in the bucket (make PREFIX=)."
  type        = string
  default     = "models"
}

variable "model_uri" {
  description = "gs://BUCKET/PREFIX/VERSION/ of the published model version to serve (make deploy and make rollback pass it)."
  type        = string

  validation {
    # A bucket name, then one or more path segments, ending with '/': a version prefix, never
    # "gs://b/models//" (an empty version) nor a file.
    condition     = can(regex("^gs://[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9](/[^/]+)+/$", var.model_uri))
    error_message = "model_uri must look like gs://bucket/prefix/version/ (the MODEL_URI= line printed by make publish)."
  }
}

variable "source_zip" {
  description = "Path of the function source bundle built by infra/bundle.py (function/ only)."
  type        = string
  default     = "../build/function-source.zip"
}

variable "memory_mb" {
  description = "Memory per instance in MiB (peak RSS per input: tests/bench/results/memory-*.json); also the MEMORY_MB env var the app sizes its limits from."
  type        = number
  default     = 512
}

variable "cpu" {
  description = "vCPUs per instance; the interpreter pool uses one per concurrent request."
  type        = string
  default     = "1"
}

variable "max_instances" {
  description = "Upper bound on instances (cost ceiling)."
  type        = number
  default     = 10
}

variable "concurrency" {
  description = "Concurrent requests per instance; also the THREADS (and INTERPRETERS) env var of the server."
  type        = number
  default     = 2
}

variable "allow_unauthenticated" {
  description = "Let anyone invoke the function (public front ends call it)."
  type        = bool
  default     = true
}

variable "allowed_origins" {
  description = "Comma-separated CORS origins, or * for any."
  type        = string
  default     = "*"
}
