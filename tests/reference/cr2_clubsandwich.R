# Reference CR2 covariances and Bell-McCaffrey (Satterthwaite) t-tests from clubSandwich.
#
# Run from the repository root (CI never runs R; the JSON is committed):
#
#     Rscript tests/reference/cr2_clubsandwich.R
#
# Reads cr2_balanced.csv and cr2_unbalanced.csv (written by cr2_panels.py) and writes
# cr2_clubsandwich.json. For every panel, regressor set (static: treated; dynamic: the
# event-time dummies e_*), weighting (none / the weight column) and clustering (cluster
# column / unit) it fits the two-way fixed-effects regression as an lm with unit and period
# factor dummies, y ~ regressors + factor(unit) + factor(time), and records
# vcovCR(fit, cluster, type = "CR2") for the treatment regressors and
# coef_test(fit, vcov, test = "Satterthwaite"): SE, t, df and p-value.
# Verified with R 4.2.2 and clubSandwich 0.5.8 (Debian bookworm r-cran-clubsandwich).

suppressPackageStartupMessages({
  library(clubSandwich)
  library(jsonlite)
})

here <- "tests/reference"
out <- list()
for (panel in c("balanced", "unbalanced")) {
  data <- read.csv(file.path(here, paste0("cr2_", panel, ".csv")))
  events <- grep("^e_", names(data), value = TRUE)
  for (design in c("static", "dynamic")) {
    regressors <- if (design == "static") "treated" else events
    formula <- as.formula(paste("y ~", paste(regressors, collapse = " + "),
                                "+ factor(unit) + factor(time)"))
    for (weighting in c("none", "weight")) {
      fit <- if (weighting == "none") lm(formula, data = data) else
        lm(formula, data = data, weights = weight)
      for (clustering in c("cluster", "unit")) {
        vc <- vcovCR(fit, cluster = data[[clustering]], type = "CR2")
        test <- coef_test(fit, vcov = vc, test = "Satterthwaite", coefs = regressors)
        key <- paste(panel, design, weighting, clustering, sep = "/")
        out[[key]] <- list(
          terms = regressors,
          estimate = unname(coef(fit)[regressors]),
          vcov = unname(as.matrix(vc[regressors, regressors])),
          std_error = test$SE,
          t = test$tstat,
          df = test$df_Satt,
          p_value = test$p_Satt
        )
      }
    }
  }
}
out[["versions"]] <- list(R = R.version.string,
                          clubSandwich = as.character(packageVersion("clubSandwich")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "cr2_clubsandwich.json"))
