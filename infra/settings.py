"""A deployment's settings: declared once, kept beside its Terraform state, applied by every deploy.

The object ``gs://STATE_BUCKET/<state prefix>/settings.json`` holds every value Terraform gets
(variables.tf declares no default for any of them, so an apply that misses one stops) and the
history of the served model. `make deploy` reads it, changes what the command line names, prints
the result, applies it and writes it back; a maintainer on another checkout finds the same
object. Writes are guarded against lost updates twice: a generation precondition (real Cloud
Storage enforces it) and a re-read of the generation just before writing (fake-gcs-server, the
emulator the tests use, does not enforce every precondition).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

SETTINGS_OBJECT = "settings.json"
CLEAR = "none"  # ALERT_EMAIL=none, CATALOGUE_INPUT_BUCKET=none: remove a remembered address or bucket
TRUE, FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


class SettingsError(ValueError):
    """A setting that cannot be parsed, or a settings object changed by someone else meanwhile."""


@dataclass(frozen=True)
class ModelChange:
    at: str  # UTC, ISO 8601
    from_uri: str  # "" on the first deploy
    to_uri: str
    command: str  # deploy (first), rollback, promote


@dataclass(frozen=True)
class Settings:
    """Every Terraform variable of a deployment but source_zip (the bundle path deploy.py builds)."""

    project: str
    region: str
    function_name: str
    bucket: str
    prefix: str = "models"
    private: bool = False
    alert_email: str = ""
    catalogue_input_bucket: str = ""
    catalogue_output_bucket: str = ""
    memory_mb: int = 512
    cpu: str = "1"
    concurrency: int = 2
    max_instances: int = 10
    allowed_origins: str = "*"
    iam_propagation_seconds: int = 120
    model_uri: str = ""  # "" until the first deploy chooses the bundled model
    model_history: tuple[ModelChange, ...] = field(default=())

    def tf_vars(self) -> dict[str, str]:
        """{Terraform variable: value as -var takes it}: every setting, nothing left to a default."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("private", "model_history")}
        values["allow_unauthenticated"] = not self.private
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}

    def changed(self, given: dict[str, str]) -> Settings:
        """These settings with the command line's ``{name: text}`` applied, each parsed by its type."""
        known = {f.name: f for f in dataclasses.fields(self) if f.name not in IDENTITY + ("model_uri", "model_history")}
        updates = {}
        for name, text in given.items():
            if name not in known:
                raise SettingsError(f"unknown setting {name!r}; settings: {', '.join(sorted(known))}")
            updates[name] = _parse(name, known[name].type, text)
        return dataclasses.replace(self, **updates)

    def serving(self, uri: str, command: str) -> Settings:
        """These settings serving ``uri``, the change recorded (nothing recorded when it is the same)."""
        if uri == self.model_uri:
            return self
        change = ModelChange(datetime.now(timezone.utc).isoformat(timespec="seconds"), self.model_uri, uri, command)
        return dataclasses.replace(self, model_uri=uri, model_history=(*self.model_history, change))

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Settings:
        try:
            raw = json.loads(data)
            history = tuple(ModelChange(**entry) for entry in raw.pop("model_history", []))
            fields = {f.name: f for f in dataclasses.fields(cls)}
            unknown = set(raw) - set(fields)
            if unknown:
                raise SettingsError(f"unknown settings {sorted(unknown)}")
            for name, value in raw.items():
                wanted = {"str": str, "bool": bool, "int": int}[fields[name].type]
                if type(value) is not wanted:
                    raise SettingsError(f"{name} must be {fields[name].type}, found {value!r}")
            return cls(**raw, model_history=history)
        except (ValueError, TypeError, AttributeError) as exc:
            raise SettingsError(f"{where} is not a settings object: {exc}") from None

    def describe(self, before: Settings | None = None) -> str:
        """One line per setting, marking what differs from ``before``; then the model's history."""
        lines = []
        for f in dataclasses.fields(self):
            if f.name == "model_history":
                continue
            value, old = getattr(self, f.name), getattr(before, f.name, None) if before else None
            note = f"   (was {old!r})" if before and old != value else ""
            lines.append(f"  {f.name:<24} {value!r}{note}")
        lines += [f"  model change {c.at}: {c.from_uri or '(none)'} -> {c.to_uri} ({c.command})" for c in self.model_history]
        return "\n".join(lines)


IDENTITY = ("project", "region", "function_name", "bucket")  # the deployment itself: its state prefix


def _parse(name: str, kind: str, text: str) -> object:
    text = text.strip()
    if kind == "bool":
        if text.lower() not in TRUE | FALSE:
            raise SettingsError(f"{name}={text!r}: give 1 or 0 (true/false, yes/no)")
        return text.lower() in TRUE
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"{name}={text!r} is not a whole number") from None
    if not text:
        raise SettingsError(f"{name} is empty; {CLEAR!r} removes an address or bucket")
    return "" if text == CLEAR and name in ("alert_email", "catalogue_input_bucket", "catalogue_output_bucket") else text


class Store:
    """The settings object of one deployment, read once and written back only if nobody wrote meanwhile."""

    def __init__(self, state_bucket: str, state_prefix: str) -> None:
        self.uri = f"gs://{state_bucket}/{state_prefix}/{SETTINGS_OBJECT}"
        self.bucket, self.name = state_bucket, f"{state_prefix}/{SETTINGS_OBJECT}"
        self.generation = 0  # 0: no object yet (what if_generation_match=0 means)

    def _blob(self, generation_known: bool = False):
        from postergenre import storage

        bucket = storage.client().bucket(self.bucket)
        return bucket.get_blob(self.name) if generation_known else bucket.blob(self.name)

    def load(self) -> Settings | None:
        blob = self._blob(generation_known=True)
        if blob is None:
            self.generation = 0
            return None
        self.generation = int(blob.generation)
        return Settings.from_json(blob.download_as_bytes(if_generation_match=self.generation), self.uri)

    def check(self) -> None:
        """Refuse when the object is no longer the generation load() read (someone else deployed meanwhile)."""
        current = self._blob(generation_known=True)
        found = int(current.generation) if current is not None else 0
        if found != self.generation:
            raise self._conflict(found)

    def save(self, settings: Settings) -> None:
        from google.api_core import exceptions as gexc

        self.check()  # fake-gcs-server ignores some preconditions: this catches a change there too
        try:
            self._blob().upload_from_string(settings.to_json(), content_type="application/json", if_generation_match=self.generation)
        except gexc.PreconditionFailed:
            raise self._conflict(None) from None
        self.generation = int(self._blob(generation_known=True).generation)

    def _conflict(self, found: int | None) -> SettingsError:
        now = f"generation {found}" if found is not None else "a newer generation"
        return SettingsError(f"{self.uri} changed while this command ran (read at generation {self.generation}, now {now}): "
                             "someone else deployed meanwhile. This command's apply went through but its settings were NOT "
                             "recorded, so the next deploy applies theirs: run this command again, with the same flags")
