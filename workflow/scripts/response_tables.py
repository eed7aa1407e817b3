"""Snakemake adapter: the tables of the independent-response study."""

import logging

from tunable_solids import jobs, loaders_response

jobs.configure_logging(snakemake.log[0])
log = logging.getLogger("response_tables")
tables = {
    "svd": loaders_response.jacobian_svd_table(
        list(snakemake.input.jacobian), list(snakemake.input.check), snakemake.params.reference
    ),
    "singular_values": loaders_response.singular_values_table(
        list(snakemake.input.jacobian), snakemake.params.reference
    ),
    "linear_regime": loaders_response.linear_regime_table(list(snakemake.input.sweeps)),
    "inverse_design": loaders_response.inverse_design_table(list(snakemake.input.sweeps)),
}
for key, table in tables.items():
    table.to_csv(snakemake.output[key], index=False)
    log.info("%s: %d rows -> %s", key, len(table), snakemake.output[key])
svd = tables["svd"]
bad = svd[(svd["structure"] == "disordered") & ~svd["fully_independent"].astype(bool)]
if len(bad):
    log.warning("%d disordered Jacobians are not full rank:\n%s", len(bad), bad.to_string())
