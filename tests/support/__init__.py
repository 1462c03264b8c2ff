"""Test helpers: stand-ins for SaaS that cannot run here, speaking their real protocols."""
