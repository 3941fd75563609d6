create schema if not exists absurd;
