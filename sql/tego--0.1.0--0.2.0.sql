/* tego 0.1.0 -> 0.2.0: adoption and operations */

\echo Use "ALTER EXTENSION tego UPDATE TO '0.2.0'" to load this file. \quit

