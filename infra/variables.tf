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

variable "model_uri" {
  description = "gs:// prefix of the published model version (the last line of make publish)."
  type        = string
  default     = ""
}

variable "model_version" {
  description = "Published model version under gs://BUCKET/models/; used when model_uri is empty."
  type        = string
  default     = ""
}

variable "source_zip" {
  description = "Path of the function source bundle built by infra/bundle.py (function/ only)."
  type        = string
  default     = "../build/function-source.zip"
}

variable "memory" {
  description = "Memory per instance (tests/bench: peak RSS about 150 MB at 2 threads)."
  type        = string
  default     = "512Mi"
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
  description = "Concurrent requests per instance; also the THREADS env var of the server."
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
