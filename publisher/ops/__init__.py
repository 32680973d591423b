"""Operations: what every stage reports while it runs (metrics, progress, log lines)."""
