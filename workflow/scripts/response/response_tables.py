"""Snakemake adapter: the tables of the independent-response study."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.response import tables as loaders

jobs.configure_logging(snakemake.log[0])
log = logging.getLogger("response_tables")
tables = {
    "svd": loaders.jacobian_svd_table(
        list(snakemake.input.jacobian), list(snakemake.input.check), snakemake.params.reference
    ),
    "singular_values": loaders.singular_values_table(
        list(snakemake.input.jacobian), snakemake.params.reference
    ),
    "linear_regime": loaders.linear_regime_table(list(snakemake.input.sweeps)),
    "inverse_design": loaders.inverse_design_table(list(snakemake.input.sweeps)),
}
for key, table in tables.items():
    table.to_csv(snakemake.output[key], index=False)
    log.info("%s: %d rows -> %s", key, len(table), snakemake.output[key])
svd = tables["svd"]
bad = svd[(svd["structure"] == "disordered") & ~svd["fully_independent"].astype(bool)]
if len(bad):
    log.warning("%d disordered Jacobians are not full rank:\n%s", len(bad), bad.to_string())
