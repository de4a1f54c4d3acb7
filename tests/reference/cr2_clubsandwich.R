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

# Sun-Abraham regressions (written to cr2_clubsandwich_sa.json, so that the TWFE file
# above keeps its keys): y on cohort x relative-period dummies (never-treated units have
# none; reference relative period -1) + factor(unit) + factor(time). For every panel,
# weighting and clustering it records the CR2 covariance of the cell coefficients,
# coef_test(test = "Satterthwaite") of each cell, and linear_contrast(test =
# "Satterthwaite") of each cell, and for every event-time effect nu_l = sum_g p_gl
# delta_gl (p_gl the cohort's share of the (weighted) observations at relative period l) and
# the overall effect (their average over l >= 0) the estimate, CR2 SE and
# Wald_test(test = "HTZ") of the one contrast (F = t^2; with q = 1 its df_denom is the
# Satterthwaite df of the contrast, checked against linear_contrast where that runs).
sa_out <- list()
for (panel in c("balanced", "unbalanced")) {
  data <- read.csv(file.path(here, paste0("cr2_", panel, ".csv")))
  relative <- ifelse(data$cohort > 0, data$time - data$cohort, NA)
  cells <- unique(data.frame(cohort = data$cohort, event = relative)[
    !is.na(relative) & relative != -1, ])
  cells <- cells[order(cells$cohort, cells$event), ]
  terms <- sprintf("c%d_%s", cells$cohort,
                   ifelse(cells$event < 0, paste0("m", -cells$event), paste0("p", cells$event)))
  for (j in seq_along(terms)) {
    data[[terms[j]]] <- as.integer(!is.na(relative) & data$cohort == cells$cohort[j] &
                                   relative == cells$event[j])
  }
  formula <- as.formula(paste("y ~", paste(terms, collapse = " + "),
                              "+ factor(unit) + factor(time)"))
  events <- sort(unique(cells$event))
  for (weighting in c("none", "weight")) {
    w <- if (weighting == "none") rep(1, nrow(data)) else data$weight
    fit <- if (weighting == "none") lm(formula, data = data) else
      lm(formula, data = data, weights = weight)
    size <- sapply(terms, function(term) sum(w * data[[term]]))
    shares <- matrix(0, length(events), length(terms))
    for (r in seq_along(events)) {
      at <- cells$event == events[r]
      shares[r, at] <- size[at] / sum(size[at])
    }
    post <- events >= 0
    contrasts <- rbind(shares, colMeans(shares[post, , drop = FALSE]))
    colnames(contrasts) <- terms
    for (clustering in c("cluster", "unit")) {
      vc <- vcovCR(fit, cluster = data[[clustering]], type = "CR2")
      test <- coef_test(fit, vcov = vc, test = "Satterthwaite", coefs = terms)
      full <- matrix(0, nrow(contrasts), length(coef(fit)),
                     dimnames = list(NULL, names(coef(fit))))
      full[, terms] <- contrasts
      wald <- lapply(seq_len(nrow(full)), function(r) {
        test <- Wald_test(fit, constraints = full[r, , drop = FALSE], vcov = vc,
                          test = "HTZ")
        c(Fstat = test$Fstat, df = test$df_denom, p = test$p_val)
      })
      wald <- do.call(rbind, wald)
      # linear_contrast of clubSandwich 0.5.8 fails for weighted lm (an undefined q in its
      # Satterthwaite branch); where it runs its df equals the HTZ df_denom (q = 1)
      lc_df <- if (weighting == "none") linear_contrast(
        fit, vcov = vc, contrasts = full, test = "Satterthwaite")$df else
        rep(NA, nrow(full))
      key <- paste(panel, weighting, clustering, sep = "/")
      sa_out[[key]] <- list(
        terms = terms, cohort = cells$cohort, event_time = cells$event,
        estimate = unname(coef(fit)[terms]),
        vcov = unname(as.matrix(vc[terms, terms])),
        std_error = test$SE, df = test$df_Satt, p_value = test$p_Satt,
        contrast_terms = c(as.character(events), "overall"),
        contrast_weights = unname(contrasts),
        contrast_estimate = unname(drop(full %*% coef(fit))),
        contrast_std_error = unname(sqrt(diag(full[, terms] %*% vc[terms, terms] %*%
                                                t(full[, terms])))),
        contrast_F = unname(wald[, "Fstat"]), contrast_df = unname(wald[, "df"]),
        contrast_p_value = unname(wald[, "p"]), contrast_df_linear = lc_df
      )
    }
  }
}
sa_out[["versions"]] <- out[["versions"]]
writeLines(toJSON(sa_out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "cr2_clubsandwich_sa.json"))
