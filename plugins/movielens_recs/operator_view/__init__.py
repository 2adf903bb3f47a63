"""What the on-call engineer looks at: each model's evaluation report, and the Model history
page in the Airflow UI. Everything here but `app.py` is free of Airflow."""
