"""The vocabulary the evidence schema is written in: one builder per kind of field (every
one described, every object closed) and the enumerations several sections share. The
builders are short and underscored so that the section modules read as a schema."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _t(kind: str, description: str, *, nullable: bool = False, **extra: Any) -> Schema:
    schema: Schema = {"type": [kind, "null"] if nullable else kind, "description": description}
    schema.update(extra)
    return schema


def _s(description: str, *, nullable: bool = False, **extra: Any) -> Schema:
    return _t("string", description, nullable=nullable, **extra)


def _uuid(description: str, *, nullable: bool = False) -> Schema:
    return _s(description, nullable=nullable, format="uuid")


def _when(description: str, *, nullable: bool = False) -> Schema:
    return _s(description + " (ISO 8601, UTC).", nullable=nullable, format="date-time")


def _day(description: str, *, nullable: bool = False) -> Schema:
    return _s(description + " (ISO 8601 date).", nullable=nullable, format="date")


def _int(description: str, *, nullable: bool = False) -> Schema:
    return _t("integer", description, nullable=nullable, minimum=0)


def _secs(description: str, *, nullable: bool = False) -> Schema:
    return _int(description + ", in seconds", nullable=nullable)


def _bool(description: str, *, nullable: bool = False) -> Schema:
    return _t("boolean", description, nullable=nullable)


def _enum(description: str, values: list[str], *, nullable: bool = False) -> Schema:
    schema = _s(description, nullable=nullable)
    schema["enum"] = [*values, None] if nullable else list(values)
    return schema


def _obj(description: str, properties: dict[str, Schema], *, nullable: bool = False) -> Schema:
    return {
        "type": ["object", "null"] if nullable else "object",
        "description": description,
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _arr(description: str, items: Schema) -> Schema:
    return {"type": "array", "description": description, "items": items}


def _strings(description: str, item: str) -> Schema:
    return _arr(description, _s(item))


DATASET_KINDS = [
    "raw_client_data",
    "processed_data",
    "labeled_training_set",
    "evaluation_set",
    "model_artifact",
    "code_repository",
    "project_docs",
    "business_records",
    "communications_archive",
    "infrastructure_config",
]
CLASSIFICATIONS = ["public", "internal", "confidential", "restricted"]
LIFECYCLE_STATES = ["active", "completed", "archived", "deletion_pending", "deleted"]
RUN_STATES = ["pending", "running", "succeeded", "failed"]
SAFEGUARDS = [
    "adequacy_decision",
    "standard_contractual_clauses",
    "binding_corporate_rules",
    "code_of_conduct",
    "certification",
    "derogation",
]
