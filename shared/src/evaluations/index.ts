export * from './evaluation-report';
export * from './evaluation-service';
export * from './evaluation-set';
export * from './evaluation-store';
export * from './paired-bootstrap';
