# Every variable but source_zip has no default: make deploy passes each one from the deployment's
# remembered settings (infra/settings.py, where the defaults of a new deployment live), so an apply
# that misses one stops here instead of silently taking a default (issue 26).

variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region for the bucket and the function."
  type        = string
}

variable "bucket" {
  description = "Name of the model bucket (created here; make publish uploads into it)."
  type        = string
}

variable "function_name" {
  description = "Cloud Function (gen2) name; also its Cloud Run service's name (make FUNCTION=)."
  type        = string

  validation {
    # The Cloud Run service a gen2 function runs on takes its name: lowercase letters, digits and
    # hyphens, starting with a letter, not ending with a hyphen, at most 49 characters.
    condition     = can(regex("^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$", var.function_name))
    error_message = "function_name must be 1-49 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen (a Cloud Run service name)."
  }
}

variable "prefix" {
  description = "Object prefix of published model versions in the bucket (make PREFIX=)."
  type        = string
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

# Instance size. Cloud Run's rules for these three together are checked here, at plan time, so a
# combination Cloud Run would refuse (or an app the size cannot hold) stops before anything is
# applied (Cloud Run's "Configure CPU limits" and "Configure memory limits" pages for services).
# The rules that combine two variables sit in memory_mb and concurrency, never in cpu: Terraform
# refuses validations that refer to each other both ways.
variable "memory_mb" {
  description = "Memory per instance in MiB (peak RSS per input: tests/bench/results/memory-*.json); also the MEMORY_MB env var the app sizes its decode budget from (function/postergenre/budget.py)."
  type        = number

  validation {
    condition     = floor(var.memory_mb) == var.memory_mb && var.memory_mb >= 128 && var.memory_mb <= 32768
    error_message = "memory_mb must be a whole number of MiB from 128 to 32768 (Cloud Run's range)."
  }
  validation {
    # Cloud Run: more than 4 GiB needs at least 2 vCPUs, more than 8 GiB 4, more than 16 GiB 6,
    # more than 24 GiB 8.
    condition = tonumber(var.cpu) >= (
      var.memory_mb > 24576 ? 8 : var.memory_mb > 16384 ? 6 : var.memory_mb > 8192 ? 4 : var.memory_mb > 4096 ? 2 : 0
    )
    error_message = "memory_mb is more than this cpu may have: Cloud Run needs at least 2 vCPUs above 4 GiB, 4 above 8 GiB, 6 above 16 GiB and 8 above 24 GiB."
  }
  validation {
    # Cloud Run: a fractional CPU allows at most 512 MiB below 0.5 vCPU and at most 1 GiB below 1.
    condition     = try(tonumber(var.cpu), 1) >= 1 || var.memory_mb <= (try(tonumber(var.cpu), 1) < 0.5 ? 512 : 1024)
    error_message = "memory_mb is too large for a fractional cpu: Cloud Run allows at most 512 MiB below 0.5 vCPU and 1024 MiB below 1 vCPU."
  }
  validation {
    # Cloud Run: 4 vCPUs need at least 2 GiB of memory, 6 and 8 vCPUs at least 4 GiB.
    condition     = var.memory_mb >= lookup({ "4" = 2048, "6" = 4096, "8" = 4096 }, tostring(try(tonumber(var.cpu), 1)), 0)
    error_message = "memory_mb is too small for this cpu: Cloud Run needs at least 2048 MiB with 4 vCPUs and 4096 MiB with 6 or 8."
  }
  validation {
    # The app keeps the warm serving processes (budget.BASE_MB, measured by make bench) and a
    # margin (budget.MARGIN_MB) out of its decode budget; below 512 MiB too little is left to
    # decode a full-size poster (function/README.md, limits).
    condition     = var.memory_mb >= 512
    error_message = "memory_mb must be at least 512: the warm app and its margin (function/postergenre/budget.py BASE_MB + MARGIN_MB) leave too little decode memory below that."
  }
}

variable "cpu" {
  description = "vCPUs per instance: a fraction from 0.08 below 1, or 1, 2, 4, 6 or 8; the interpreter pool uses one per concurrent request."
  type        = string

  validation {
    condition     = can(tonumber(var.cpu)) && (contains([1, 2, 4, 6, 8], try(tonumber(var.cpu), 0)) || (try(tonumber(var.cpu), 0) >= 0.08 && try(tonumber(var.cpu), 0) < 1))
    error_message = "cpu must be a number: 0.08 up to (not including) 1 in steps of 0.001, or exactly 1, 2, 4, 6 or 8 (Cloud Run's CPU limits)."
  }
}

variable "max_instances" {
  description = "Upper bound on instances (cost ceiling)."
  type        = number

  validation {
    condition     = floor(var.max_instances) == var.max_instances && var.max_instances >= 1
    error_message = "max_instances must be a whole number, at least 1."
  }
}

variable "concurrency" {
  description = "Concurrent requests per instance; also the THREADS (and INTERPRETERS) env var of the server."
  type        = number

  validation {
    condition     = floor(var.concurrency) == var.concurrency && var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be a whole number from 1 to 1000 (Cloud Run's range)."
  }
  validation {
    # Cloud Run: below 1 vCPU an instance takes one request at a time.
    condition     = var.concurrency == 1 || try(tonumber(var.cpu), 0) >= 1
    error_message = "concurrency must be 1 when cpu is below 1 (Cloud Run requires max_instance_request_concurrency = 1 for fractional CPUs)."
  }
}

variable "allow_unauthenticated" {
  description = "Let anyone invoke the function (public front ends call it)."
  type        = bool
}

variable "allowed_origins" {
  description = "Comma-separated CORS origins, or * for any."
  type        = string
}

variable "alert_email" {
  description = "E-mail address the alerts (monitoring.tf) notify; empty: the policies exist and show in the console, with no one notified."
  type        = string

  validation {
    condition     = var.alert_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address, or empty for no notification channel."
  }
}

variable "iam_propagation_seconds" {
  description = "How long the first apply waits after creating the IAM grants before it creates the function (time_sleep in main.tf)."
  type        = number

  validation {
    condition     = var.iam_propagation_seconds >= 0 && var.iam_propagation_seconds <= 900
    error_message = "iam_propagation_seconds must be between 0 and 900."
  }
}

# The catalogue pipeline (catalogue.tf): set either bucket and its Dataflow resources exist.
variable "catalogue_input_bucket" {
  type        = string
  description = "Bucket holding the posters a catalogue run reads (empty: no catalogue grant on input)."
}

variable "catalogue_output_bucket" {
  type        = string
  description = "Bucket a catalogue run writes its results and Dataflow temp files to (TEMP_LOCATION gs://<it>/tmp/); empty: none."
}
