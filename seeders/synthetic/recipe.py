"""The synthetic seed recipe file: row counts, seed, per-column overrides.

```yaml
seed: 42            # same seed, same data
rows: 1000          # default rows per table
scale: 1.0          # multiplies every count
tables:
  customers:
    rows: 5000
    columns:
      country: {values: [DE, FR, NL]}
      full_name: {provider: name}
  countries: leave  # the target's rows stay: reference data the migrations load
```

Migration records (:mod:`seeders.synthetic.left`) are left as the target has them
unless the recipe names them.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seeders.schema.model import Schema
from seeders.synthetic.generator import ColumnOverride, SyntheticConfig
from seeders.synthetic.left import synthetic_leaves
from seeders.synthetic.values import is_faker_provider


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnRecipe(_Strict):
    provider: str | None = None
    values: tuple[str, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> ColumnRecipe:
        if (self.provider is None) == (self.values is None):
            raise ValueError("give exactly one of 'provider' (a Faker provider) or 'values'")
        if self.provider is not None and not is_faker_provider(self.provider):
            raise ValueError(f"{self.provider!r} is not a Faker provider (e.g. name, email, city)")
        return self


class TableRecipe(_Strict):
    rows: int | None = Field(None, ge=0)
    columns: dict[str, ColumnRecipe] = Field(default_factory=dict)
    leave: bool = False  # written `countries: leave`: no rows written, the target's stay

    @model_validator(mode="after")
    def _left_alone(self) -> TableRecipe:
        if self.leave and (self.rows is not None or self.columns):
            raise ValueError("a table left as the target has it takes no rows or columns")
        return self


class Recipe(_Strict):
    seed: int = 0
    rows: int = Field(1000, ge=0)
    scale: float = Field(1.0, gt=0, le=1000)
    tables: dict[str, TableRecipe] = Field(default_factory=dict)

    @field_validator("tables", mode="before")
    @classmethod
    def _leave(cls, tables: object) -> object:
        if not isinstance(tables, dict):
            return tables
        for name, table in tables.items():
            if isinstance(table, str) and table != "leave":
                raise ValueError(
                    f"{name}: expected a mapping (rows, columns) or 'leave', not {table!r}"
                )
        return {name: {"leave": True} if t == "leave" else t for name, t in tables.items()}

    def config(self, schema: Schema) -> SyntheticConfig:
        """Check every table and column exists, then build the generator config."""
        problems = []
        for table_name, table in self.tables.items():
            try:
                found = schema.table(table_name)
            except KeyError:
                known = ", ".join(t.qualified for t in schema.tables)
                problems.append(f"tables.{table_name}: no such table; tables: {known}")
                continue
            if found.extension and not table.leave:
                problems.append(
                    f"tables.{table_name}: belongs to extension {found.extension}, which fills"
                    " it; a seed leaves it as it is: remove it from the recipe"
                )
            for column in table.columns:
                if column not in {c.name for c in found.columns}:
                    problems.append(f"tables.{table_name}.columns.{column}: no such column")
        if problems:
            raise RecipeError("\n".join(problems))
        named = {schema.table(name).qualified: t for name, t in self.tables.items()}
        left = {
            table.qualified
            for table in schema.tables
            if synthetic_leaves(
                table, table.qualified in named, getattr(named.get(table.qualified), "leave", False)
            )
        }
        return SyntheticConfig(
            default_rows=self.rows,
            rows={name: t.rows for name, t in self.tables.items() if t.rows is not None},
            scale=self.scale,
            seed=self.seed,
            overrides={
                schema.table(name).name: {
                    col: ColumnOverride(provider=c.provider, values=c.values)
                    for col, c in t.columns.items()
                }
                for name, t in self.tables.items()
            },
            left=frozenset(left),
        )


def load_recipe(path: Path) -> Recipe:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"{path}: {exc}") from None
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            lines.append(f"{path}: {key}: {error['msg'].removeprefix('Value error, ')}")
        raise RecipeError("\n".join(lines)) from None
