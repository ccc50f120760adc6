#pragma once

/// \file
/// Everything public in dynweight. Include the individual headers to pay only for what you use.

#include "dynweight/core/error.hpp"
#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/estimators/constant_correlation.hpp"
#include "dynweight/estimators/fixed_shrinkage.hpp"
#include "dynweight/estimators/ledoit_wolf.hpp"
#include "dynweight/estimators/oas.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/estimators/shrinkage.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/inverse_volatility.hpp"
#include "dynweight/policies/liquidity_scaled.hpp"
#include "dynweight/policies/policy.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/rebalance/rebalancer.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/ewma_decay.hpp"
#include "dynweight/stats/ewma_moments.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"
