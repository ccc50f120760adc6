// The minimal example of README.md ("Use it"), kept here so that CTest compiles and runs it.
#include <dynweight/dynweight.hpp>
#include <iostream>

int main() {
  dynweight::ReturnCalculator<double> returns(2);               // simple returns of 2 assets
  dynweight::RollingMoments<double> rolling(2, {.window = 3});  // 3-bar window, ddof = 1
  const double prices[][2] = {{100, 50}, {101, 50.5}, {100.5, 50.2}, {102, 51}, {101, 50.8}};
  for (const auto& bar : prices) {
    if (returns.update(Eigen::Vector2d(bar[0], bar[1])))
      rolling.update(returns.returns());
  }
  std::cout << "volatility: " << rolling.volatility().transpose() << "\ncorrelation:\n"
            << Eigen::MatrixXd(rolling.correlation()) << '\n';
  return rolling.ready() && rolling.volatility().allFinite() ? 0 : 1;
}
