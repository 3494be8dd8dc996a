"""A simulated Veeam Backup Enterprise Manager, for the demo, the tests and the benchmarks."""

from exporter.simulator.app import Simulator
from exporter.simulator.scenario import Scenario, load_scenario
from exporter.simulator.world import ManualClock, World

__all__ = ["ManualClock", "Scenario", "Simulator", "World", "load_scenario"]
